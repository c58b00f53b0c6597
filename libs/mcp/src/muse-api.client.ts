/**
 * The slice of the gateway's REST API the MCP server needs, called with the
 * MCP client's own credential: every tool is exactly as scoped as the REST
 * route behind it (projects, scopes, rate limits, audit), by construction.
 */
import { readFileSync } from 'node:fs';
import type { ErrorBody } from '@muse/contracts';

/** A non-2xx answer of the gateway (or no answer at all: status 0), with its error body as sent. */
export class MuseApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.message);
    this.name = 'MuseApiError';
  }
}

export function isMuseApiError(err: unknown): err is MuseApiError {
  return err instanceof MuseApiError;
}

export interface MuseApiCredentials {
  /** Sent as `Authorization: Bearer <token>`: an API key or a JWT. */
  token: string;
  /** Sent as `Muse-Project` when set (a key with several projects names the one it acts in). */
  project?: string;
}

export interface ArtifactContent {
  status: number;
  bytes: Uint8Array;
  contentType: string | undefined;
  /** `Content-Range` of a 206. */
  contentRange: string | undefined;
}

type Query = Record<string, string | number | undefined>;

export class MuseApiClient {
  /**
   * @param baseUrl the gateway, e.g. `http://127.0.0.1:3000` (no trailing slash)
   * @param credentials read on every call, so a caller may swap the token (a refreshed JWT) without a new client
   */
  constructor(
    readonly baseUrl: string,
    private readonly credentials: () => MuseApiCredentials,
  ) {}

  /** Headers of the WebSocket handshake and of every request. */
  authHeaders(): Record<string, string> {
    const c = this.credentials();
    return { authorization: `Bearer ${c.token}`, ...(c.project ? { 'muse-project': c.project } : {}) };
  }

  /** The `/v1/stream` WebSocket URL of this gateway. */
  streamUrl(): string {
    return `${this.baseUrl.replace(/^http/, 'ws')}/v1/stream`;
  }

  async request<T>(method: string, path: string, opts: { body?: unknown; query?: Query; headers?: Record<string, string> } = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await res.text();
    const json = parseJson(text);
    if (!res.ok) throw new MuseApiError(res.status, errorBodyOf(res.status, json, text));
    return json as T;
  }

  /** `GET /v1/artifacts/{id}/content`, optionally one byte range (`Range: bytes=start-end`). */
  async artifactContent(id: string, range?: { start: number; end: number }): Promise<ArtifactContent> {
    const res = await this.send('GET', `/v1/artifacts/${encodeURIComponent(id)}/content`, {
      headers: range ? { range: `bytes=${range.start}-${range.end}` } : {},
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (!res.ok && res.status !== 416) {
      const text = new TextDecoder().decode(bytes);
      throw new MuseApiError(res.status, errorBodyOf(res.status, parseJson(text), text));
    }
    return { status: res.status, bytes: res.status === 416 ? new Uint8Array() : bytes, contentType: res.headers.get('content-type') ?? undefined, contentRange: res.headers.get('content-range') ?? undefined };
  }

  private async send(method: string, path: string, opts: { body?: unknown; query?: Query; headers?: Record<string, string> }): Promise<Response> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) q.set(k, String(v));
    const url = `${this.baseUrl}${path}${q.size > 0 ? `?${q}` : ''}`;
    const headers: Record<string, string> = { ...this.authHeaders(), ...(opts.headers ?? {}) };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(url, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
    } catch (err) {
      throw new MuseApiError(0, { code: 'MUSE_ERR_UNAVAILABLE', message: `Cannot reach the gateway at ${this.baseUrl}: ${(err as Error).message}`, retryable: true });
    }
  }
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The gateway's `{error: {...}}` as sent, or a catalogue-shaped stand-in when the body is not one (a proxy's HTML page). */
function errorBodyOf(status: number, json: unknown, text: string): ErrorBody {
  const e = (json as { error?: Partial<ErrorBody> } | undefined)?.error;
  if (e && typeof e.code === 'string' && typeof e.message === 'string') {
    return { code: e.code, message: e.message, retryable: e.retryable ?? status >= 500, ...(e.details !== undefined ? { details: e.details } : {}) };
  }
  const code = status === 401 ? 'MUSE_ERR_AUTH_REQUIRED' : status === 403 ? 'MUSE_ERR_AUTH_FORBIDDEN' : status === 404 ? 'MUSE_ERR_ROUTE_NOT_FOUND' : status >= 500 ? 'MUSE_ERR_UNAVAILABLE' : 'MUSE_ERR_REQUEST_INVALID';
  return { code, message: `The gateway answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`, retryable: status >= 500 || status === 429 };
}

/** This package's version, reported as the MCP server's `serverInfo.version`. */
export const MUSE_MCP_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

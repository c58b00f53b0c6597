/**
 * `resources/subscribe` for `muse://runs/{id}` and `muse://artifacts/{id}`.
 *
 * A run changes with every event of its log: the session follows it on one
 * shared `/v1/stream` WebSocket, from the run view's `seq` on, and sends
 * `notifications/resources/updated` (at most one per run per
 * NOTIFY_COALESCE_MS). An artifact is immutable (content-addressed); its one
 * change is its removal by retention, notified at its `expiresAt`.
 */
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { ArtifactMeta, ErrorBody, RunView } from '@muse/contracts';
import { isMuseApiError, type MuseApiClient } from './muse-api.client.js';
import { RunStream } from './run-stream.js';

export const RUN_URI_PREFIX = 'muse://runs/';
export const ARTIFACT_URI_PREFIX = 'muse://artifacts/';

/** Events of one run closer together than this give one notification, in ms. */
const NOTIFY_COALESCE_MS = 100;
/** Longest delay a Node timer takes, in ms (about 24.8 days); later expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** JSON-RPC error code of an unknown resource (MCP specification). */
export const RESOURCE_NOT_FOUND = -32002;

export type MuseResource = { kind: 'run' | 'artifact'; id: string };

export function parseMuseUri(uri: string): MuseResource | undefined {
  for (const [prefix, kind] of [[RUN_URI_PREFIX, 'run'], [ARTIFACT_URI_PREFIX, 'artifact']] as const) {
    if (uri.startsWith(prefix)) {
      const id = decodeURIComponent(uri.slice(prefix.length));
      return id !== '' && !id.includes('/') ? { kind, id } : undefined;
    }
  }
  return undefined;
}

/** A REST failure as a JSON-RPC error carrying the Muse envelope in `data`; 404s use the MCP "resource not found" code. */
export function resourceError(err: unknown, uri: string): McpError {
  if (err instanceof McpError) return err;
  const body: ErrorBody = isMuseApiError(err) ? err.body : { code: 'MUSE_ERR_INTERNAL', message: (err as Error).message, retryable: true };
  const notFound = isMuseApiError(err) && err.status === 404;
  return new McpError(notFound ? RESOURCE_NOT_FOUND : ErrorCode.InternalError, `${uri}: ${body.message}`, { uri, error: body });
}

export class ResourceSubscriptions {
  private stream: RunStream | undefined;
  private readonly active = new Map<string, () => void>();
  private readonly pending = new Set<string>();
  private closed = false;

  constructor(
    private readonly api: MuseApiClient,
    private readonly notify: (uri: string) => Promise<void>,
  ) {}

  async subscribe(uri: string): Promise<void> {
    const res = parseMuseUri(uri);
    if (!res) throw new McpError(ErrorCode.InvalidParams, `Not a Muse resource: ${uri} (muse://runs/{id} or muse://artifacts/{id})`);
    if (this.active.has(uri) || this.closed) return;
    try {
      if (res.kind === 'run') {
        const view = await this.api.request<RunView>('GET', `/v1/runs/${encodeURIComponent(res.id)}`);
        this.stream ??= new RunStream(this.api);
        const stop = await this.stream.subscribe(res.id, view.seq + 1, {
          onEvent: () => this.changed(uri),
          onError: () => {
            // The run is gone for this credential (revoked, or no longer visible): one last notice, and a read says why.
            this.active.delete(uri);
            this.changed(uri);
          },
        });
        this.active.set(uri, stop);
      } else {
        const meta = await this.api.request<ArtifactMeta>('GET', `/v1/artifacts/${encodeURIComponent(res.id)}`);
        this.active.set(uri, meta.expiresAt ? this.atTime(Date.parse(meta.expiresAt), () => this.changed(uri)) : () => undefined);
      }
    } catch (err) {
      throw resourceError(err, uri);
    }
  }

  unsubscribe(uri: string): void {
    this.active.get(uri)?.();
    this.active.delete(uri);
  }

  close(): void {
    this.closed = true;
    for (const stop of this.active.values()) stop();
    this.active.clear();
    this.stream?.close();
  }

  private changed(uri: string): void {
    if (this.pending.has(uri) || this.closed) return;
    this.pending.add(uri);
    setTimeout(() => {
      this.pending.delete(uri);
      if (!this.closed) this.notify(uri).catch(() => undefined);
    }, NOTIFY_COALESCE_MS).unref();
  }

  /** Calls `fn` at `when` (ms since the epoch); returns the canceller. */
  private atTime(when: number, fn: () => void): () => void {
    let timer: NodeJS.Timeout;
    const arm = () => {
      const wait = when - Date.now();
      timer = setTimeout(wait > MAX_TIMER_MS ? arm : fn, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  }
}

/**
 * Artifact metadata (written by the artifact store into Redis) and content
 * (streamed from the artifact store's HTTP API).
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import {
  ArtifactLineageSchema,
  ArtifactMetaSchema,
  ErrorEnvelopeSchema,
  MuseError,
  type ArtifactLineage,
  type ArtifactMeta,
  type GatewayConfig,
  type MuseNames,
} from '@muse/contracts';
import { LOGGER, type Logger } from '@muse/telemetry';
import { GATEWAY_CONFIG, NAMES, REDIS } from '../gateway.tokens.js';
import { RunStore } from '../runs/run-store.service.js';
import { runNotFound } from '../runs/runs.service.js';
import { artifactContentUrl, downstreamHeaders, upstreamRequestHeaders } from './artifact-proxy.js';

/** How long the store may take to start answering, in ms (the body itself may take as long as it needs). */
const UPSTREAM_HEADERS_TIMEOUT_MS = 10_000;
/** Artifact ids are ours to look up, but they end up in a Redis key and a URL: keep them sane. */
const ARTIFACT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,200}$/;

export interface ArtifactContent {
  status: number;
  headers: Record<string, string>;
  body: Readable | null;
}

@Injectable()
export class ArtifactsService {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(RunStore) private readonly runs: RunStore,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** A run's artifacts, oldest first. */
  async listForRun(project: string, runId: string): Promise<ArtifactMeta[]> {
    if (!(await this.runs.find(project, runId))) throw runNotFound(runId);
    const ids = await this.redis.zrange(this.names.runArtifactsKey(runId), '0', '-1');
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(...ids.map((id) => this.names.artifactKey(id)));
    const out: ArtifactMeta[] = [];
    raws.forEach((raw, i) => {
      const meta = raw === null ? null : this.parseMeta(raw, ids[i]!);
      if (meta && meta.project === project) out.push(meta);
    });
    return out;
  }

  async get(project: string, id: string): Promise<ArtifactMeta> {
    const raw = ARTIFACT_ID_PATTERN.test(id) ? await this.redis.get(this.names.artifactKey(id)) : null;
    const meta = raw === null ? null : this.parseMeta(raw, id);
    if (!meta || meta.project !== project) throw artifactNotFound(id);
    return meta;
  }

  /**
   * Opens the artifact's bytes at the store. Status and the content headers
   * pass through (206 for a Range, 416, 304...); a 404 there is a 404 here.
   */
  async openContent(project: string, id: string, requestHeaders: Record<string, string | string[] | undefined>, signal: AbortSignal): Promise<ArtifactContent> {
    await this.get(project, id);
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => ac.abort(new Error('artifact store did not answer in time')), UPSTREAM_HEADERS_TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(artifactContentUrl(this.config.MUSE_ARTIFACT_STORE_URL, id), {
        headers: upstreamRequestHeaders(requestHeaders),
        signal: ac.signal,
        redirect: 'error',
      });
    } catch (cause) {
      signal.removeEventListener('abort', onAbort);
      throw new MuseError('MUSE_ERR_UNAVAILABLE', 'The artifact store is unreachable', { cause });
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 404) {
      await res.body?.cancel().catch(() => undefined);
      this.logger.warn({ artifactId: id }, 'artifact has metadata but the store has no content');
      throw artifactNotFound(id);
    }
    const body = res.body ? Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) : null;
    body?.once('close', () => signal.removeEventListener('abort', onAbort));
    return { status: res.status, headers: downstreamHeaders(res.headers), body };
  }

  /** The artifact's lineage, from the artifact store (which reads the run's log); the caller's project is checked here first. */
  async lineage(project: string, id: string): Promise<ArtifactLineage> {
    await this.get(project, id);
    let res: Response;
    try {
      res = await fetch(`${this.config.MUSE_ARTIFACT_STORE_URL.replace(/\/+$/, '')}/v1/artifacts/${encodeURIComponent(id)}/lineage`, {
        signal: AbortSignal.timeout(UPSTREAM_HEADERS_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (cause) {
      throw new MuseError('MUSE_ERR_UNAVAILABLE', 'The artifact store is unreachable', { cause });
    }
    const body: unknown = await res.json().catch(() => null);
    if (res.status === 404) throw artifactNotFound(id);
    if (!res.ok) {
      const err = ErrorEnvelopeSchema.safeParse(body);
      throw err.success ? MuseError.fromWire(err.data.error) : new MuseError('MUSE_ERR_UNAVAILABLE', `The artifact store answered ${res.status}`);
    }
    return ArtifactLineageSchema.parse(body);
  }

  private parseMeta(raw: string, id: string): ArtifactMeta | null {
    try {
      return ArtifactMetaSchema.parse(JSON.parse(raw));
    } catch (err) {
      this.logger.warn({ err, artifactId: id }, 'artifact metadata does not parse');
      return null;
    }
  }
}

export function artifactNotFound(id: string): MuseError {
  return new MuseError('MUSE_ERR_ARTIFACT_NOT_FOUND', `No artifact "${id}"`, { details: { id } });
}

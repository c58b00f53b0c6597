/**
 * `PUT /internal/v1/blobs`: the raw body, whatever its content type, streamed
 * into the blob store. Answers `201 {digest, size}`.
 *
 * `PUT /internal/v1/runs/{runId}/artifacts/{name}`: a named write — the body
 * streamed into the blob store and committed at once as the next version of
 * `name` in the run, fenced by `X-Muse-Fencing-Token` (409
 * MUSE_ERR_ARTIFACT_STALE_TOKEN when older than the newest seen for the run)
 * and, with `If-Match: <version>`, only while that is the name's latest
 * version (`0` = the name is new; else 412 MUSE_ERR_ARTIFACT_VERSION_CONFLICT).
 * Also `X-Muse-Step` (required), `X-Muse-Attempt` (default 1),
 * `X-Muse-Project` (default `default`), `X-Muse-Agent`, `X-Muse-Tool`,
 * `X-Muse-Tool-Version`, `X-Muse-Schema`; the Content-Type becomes the
 * artifact's media type. Answers `201 {id, name, version, digest, size, mediaType}`.
 *
 * Registered as a Fastify plugin, not a Nest controller, because the body
 * must reach us as an untouched stream: content-type parsers are scoped per
 * Fastify encapsulation context, and Nest puts its JSON and urlencoded parsers
 * (which buffer up to the body limit) on the root context at init. In our own
 * child context we drop every inherited parser and add one catch-all that
 * hands the stream over, so an upload that says `application/json` is stored
 * byte for byte instead of being parsed.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MuseError, toErrorBody, type ArtifactCommitResponse } from '@muse/contracts';
import { SpanKind, extractContext, withSpan, type Logger } from '@muse/telemetry';
import type { BlobBackend, PutResult } from './blob.backend.js';
import type { ArtifactStoreMetrics } from './artifact-store.metrics.js';

export const BLOB_UPLOAD_PATH = '/internal/v1/blobs';
export const NAMED_WRITE_PATH = '/internal/v1/runs/:runId/artifacts/:name';

export interface BlobUploadDeps {
  blobs: Pick<BlobBackend, 'put'>;
  maxBytes: number;
  metrics: Pick<ArtifactStoreMetrics, 'bytesWritten' | 'blobsWritten'> & Partial<Pick<ArtifactStoreMetrics, 'staleTokenRejections'>>;
  logger: Pick<Logger, 'warn' | 'error' | 'debug'>;
  /** GC's pending-reference marker (blob-gc.service.ts); absent = no GC. */
  markPending?: (digest: string) => Promise<void>;
  /** The commit path of named writes (the same handler as NATS commits). */
  commit?: (payload: unknown) => Promise<ArtifactCommitResponse>;
  /** The highest fencing token seen for a run, to turn a stale writer away before its body is read. */
  highestToken?: (runId: string) => Promise<number>;
}

export function registerBlobUploadRoute(fastify: FastifyInstance, deps: BlobUploadDeps): void {
  void fastify.register(async (child) => {
    child.removeAllContentTypeParsers();
    child.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    // Server spans continuing the writer's trace (its `traceparent` header): a step's upload joins its run's trace.
    child.put(BLOB_UPLOAD_PATH, (req, reply) => traced('muse.artifact.blob.put', req, () => uploadBlob(req, reply, deps)));
    child.put(NAMED_WRITE_PATH, (req, reply) => traced('muse.artifact.named.write', req, () => writeNamed(req, reply, deps)));
  });
}

function traced(name: string, req: FastifyRequest, fn: () => Promise<FastifyReply>): Promise<FastifyReply> {
  return withSpan(name, { kind: SpanKind.SERVER, parent: extractContext(req.headers), attributes: { 'http.request.method': req.method, 'http.route': req.routeOptions.url ?? '' } }, async (span) => {
    const reply = await fn();
    span.setAttribute('http.response.status_code', (reply as { statusCode: number }).statusCode);
    return reply;
  });
}

async function store(req: FastifyRequest, deps: BlobUploadDeps): Promise<PutResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > deps.maxBytes) {
    throw new MuseError('MUSE_ERR_REQUEST_TOO_LARGE', `blob is larger than ${deps.maxBytes} bytes`, { details: { limitBytes: deps.maxBytes } });
  }
  // No body at all (no content type, no length) reaches the handler without the parser.
  const body = (req.body as Readable | undefined) ?? req.raw;
  // The body's chunks are read by nothing but the spool: it frees each once written (see releaseChunk).
  const res = await deps.blobs.put(body, { releaseChunks: true, ...(deps.markPending ? { onDigest: deps.markPending } : {}) });
  deps.metrics.blobsWritten.inc({ dedup: String(res.dedup) });
  if (!res.dedup) deps.metrics.bytesWritten.inc(res.size);
  deps.logger.debug({ digest: res.digest, size: res.size, dedup: res.dedup }, 'blob stored');
  return res;
}

async function uploadBlob(req: FastifyRequest, reply: FastifyReply, deps: BlobUploadDeps): Promise<FastifyReply> {
  try {
    const res = await store(req, deps);
    return reply.code(201).send({ digest: res.digest, size: res.size });
  } catch (err) {
    return fail(req, reply, deps, err);
  }
}

/** The headers of a named write, parsed; a bad one is a 400 that names it. */
export function parseNamedWrite(params: { runId: string; name: string }, h: Record<string, string | string[] | undefined>) {
  const one = (n: string) => {
    const v = h[n];
    return Array.isArray(v) ? v[0] : v;
  };
  const int = (n: string, v: string | undefined, min: number): number => {
    if (v === undefined || !/^\d{1,15}$/.test(v) || Number(v) < min) {
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', `${n} must be an integer >= ${min}`, { details: { header: n, value: v ?? null } });
    }
    return Number(v);
  };
  const fencingToken = int('x-muse-fencing-token', one('x-muse-fencing-token'), 0);
  const stepId = one('x-muse-step');
  if (!stepId) throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'x-muse-step is required', { details: { header: 'x-muse-step' } });
  const attempt = one('x-muse-attempt') === undefined ? 1 : int('x-muse-attempt', one('x-muse-attempt'), 1);
  const ifMatchRaw = one('if-match');
  // A version is sent bare (`3`) or as an entity tag (`"3"`).
  const ifMatch = ifMatchRaw === undefined ? undefined : int('if-match', ifMatchRaw.trim().replace(/^"(.*)"$/, '$1'), 0);
  const opt = (n: string, key: string) => (one(n) !== undefined ? { [key]: one(n)! } : {});
  return {
    runId: params.runId,
    project: one('x-muse-project') ?? 'default',
    stepId,
    attempt,
    agentId: one('x-muse-agent') ?? 'external',
    fencingToken,
    item: {
      name: params.name,
      mediaType: (one('content-type') ?? 'application/octet-stream').slice(0, 255),
      ...opt('x-muse-tool', 'tool'),
      ...opt('x-muse-tool-version', 'toolVersion'),
      ...opt('x-muse-schema', 'schema'),
      ...(ifMatch !== undefined ? { ifMatch } : {}),
    },
  };
}

async function writeNamed(req: FastifyRequest, reply: FastifyReply, deps: BlobUploadDeps): Promise<FastifyReply> {
  try {
    if (!deps.commit || !deps.highestToken) throw new MuseError('MUSE_ERR_UNAVAILABLE', 'named writes are not enabled');
    const w = parseNamedWrite(req.params as { runId: string; name: string }, req.headers);
    // Checked again, atomically, at the commit: this only spares a stale writer its upload.
    if ((await deps.highestToken(w.runId)) > w.fencingToken) {
      deps.metrics.staleTokenRejections?.inc();
      throw new MuseError('MUSE_ERR_ARTIFACT_STALE_TOKEN', undefined, { details: { runId: w.runId, fencingToken: w.fencingToken } });
    }
    const blob = await store(req, deps);
    const { item, ...rest } = w;
    // A named write may write a name again in the same attempt: only a retry of the same bytes is a replay.
    const res = await deps.commit({ ...rest, replay: 'content', artifacts: [{ ...item, digest: blob.digest, size: blob.size }] });
    if (!res.ok) {
      // The blob was stored a moment ago: "not stored" at the commit means GC collected it in between (its pending
      // mark outlived by then), which is what COLLECTING says: upload again.
      if (res.error.code === 'MUSE_ERR_ARTIFACT_NOT_FOUND') throw new MuseError('MUSE_ERR_ARTIFACT_BLOB_COLLECTING', undefined, { details: { digest: blob.digest } });
      throw MuseError.fromWire(res.error);
    }
    return reply.code(201).send(res.artifacts[0]);
  } catch (err) {
    return fail(req, reply, deps, err);
  }
}

async function fail(req: FastifyRequest, reply: FastifyReply, deps: BlobUploadDeps, err: unknown): Promise<FastifyReply> {
  if (!(err instanceof MuseError) && req.raw.socket.destroyed) {
    // The client went away mid-upload; the temp file is already gone.
    deps.logger.warn({ err: (err as Error).message }, 'blob upload aborted by the client');
    return reply;
  }
  const status = err instanceof MuseError ? err.status : 500;
  if (status >= 500) deps.logger.error({ err }, 'blob upload failed');
  else deps.logger.warn({ code: (err as MuseError).code }, 'blob upload rejected');
  // The rest of the body is unread (over the limit, or turned away before reading): close the connection rather than read it.
  if (status === 413 || !req.raw.readableEnded) reply.header('connection', 'close');
  return reply.code(status).send({ error: toErrorBody(err) });
}

/**
 * `PUT /internal/v1/blobs`: the raw body, whatever its content type, streamed
 * into the blob store. Answers `201 {digest, size}`.
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
import { MuseError, toErrorBody } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import type { BlobStore } from './blob.store.js';
import type { ArtifactStoreMetrics } from './artifact-store.metrics.js';

export const BLOB_UPLOAD_PATH = '/internal/v1/blobs';

export interface BlobUploadDeps {
  blobs: Pick<BlobStore, 'put'>;
  maxBytes: number;
  metrics: Pick<ArtifactStoreMetrics, 'bytesWritten' | 'blobsWritten'>;
  logger: Pick<Logger, 'warn' | 'error' | 'debug'>;
}

export function registerBlobUploadRoute(fastify: FastifyInstance, deps: BlobUploadDeps): void {
  void fastify.register(async (child) => {
    child.removeAllContentTypeParsers();
    child.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    child.put(BLOB_UPLOAD_PATH, (req, reply) => uploadBlob(req, reply, deps));
  });
}

async function uploadBlob(req: FastifyRequest, reply: FastifyReply, deps: BlobUploadDeps): Promise<FastifyReply> {
  try {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > deps.maxBytes) {
      throw new MuseError('MUSE_ERR_REQUEST_TOO_LARGE', `blob is larger than ${deps.maxBytes} bytes`, { details: { limitBytes: deps.maxBytes } });
    }
    // No body at all (no content type, no length) reaches the handler without the parser.
    const body = (req.body as Readable | undefined) ?? req.raw;
    const res = await deps.blobs.put(body);
    deps.metrics.blobsWritten.inc({ dedup: String(res.dedup) });
    if (!res.dedup) deps.metrics.bytesWritten.inc(res.size);
    deps.logger.debug({ digest: res.digest, size: res.size, dedup: res.dedup }, 'blob stored');
    return reply.code(201).send({ digest: res.digest, size: res.size });
  } catch (err) {
    if (!(err instanceof MuseError) && req.raw.socket.destroyed) {
      // The client went away mid-upload; the temp file is already gone.
      deps.logger.warn({ err: (err as Error).message }, 'blob upload aborted by the client');
      return reply;
    }
    const status = err instanceof MuseError ? err.status : 500;
    if (status >= 500) deps.logger.error({ err }, 'blob upload failed');
    else deps.logger.warn({ code: (err as MuseError).code }, 'blob upload rejected');
    // The rest of the body is unread: close the connection rather than read it.
    if (status === 413) reply.header('connection', 'close');
    return reply.code(status).send({ error: toErrorBody(err) });
  }
}

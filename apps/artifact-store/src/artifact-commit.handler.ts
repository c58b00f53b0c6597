/**
 * The NATS request handler on `artifactCommitSubject`: binds uploaded blobs
 * to a run as versioned artifacts, fenced by the run's token. It never
 * throws: every outcome is an `ArtifactCommitResponse`, so the coordinator
 * can branch on the error code.
 */
import { Readable } from 'node:stream';
import {
  ArtifactCommitRequestSchema,
  MuseError,
  toErrorBody,
  type ArtifactCommitRequest,
  type ArtifactCommitResponse,
  type ArtifactRef,
} from '@muse/contracts';
import { acceptedOutcome, artifactNameProblem, inlineBlobBytes, toArtifactRef, type ArtifactRepository } from '@muse/artifacts';
import type { Logger } from '@muse/telemetry';
import type { BlobBackend } from './blob.backend.js';
import { isDigest } from './blob.store.js';
import type { ArtifactStoreMetrics, CommitOutcome } from './artifact-store.metrics.js';

export interface ArtifactCommitDeps {
  blobs: Pick<BlobBackend, 'size' | 'put' | 'putBytes' | 'keepsInRedis'>;
  /** GC's pending-reference marker (blob-gc.service.ts), set for a blob written from a request's `content`; absent = no GC. */
  markPending?: (digest: string) => Promise<void>;
  repo: Pick<ArtifactRepository, 'commit' | 'highestToken'>;
  metrics?: Pick<ArtifactStoreMetrics, 'commits' | 'staleTokenRejections'> & Partial<Pick<ArtifactStoreMetrics, 'blobsWritten' | 'bytesWritten' | 'countStored'>>;
  logger?: Pick<Logger, 'warn' | 'error' | 'debug'>;
  /** Retention of artifacts whose request names none, in ms; 0 = forever. @default 0 */
  defaultTtlMs?: number;
}

export class ArtifactCommitHandler {
  constructor(private readonly deps: ArtifactCommitDeps) {}

  async handle(payload: unknown): Promise<ArtifactCommitResponse> {
    let outcome: CommitOutcome = 'error';
    try {
      const res = await this.commit(payload);
      outcome = res.outcome;
      return res.response;
    } catch (err) {
      outcome = isMuseError(err, 'MUSE_ERR_REQUEST_INVALID')
        ? 'invalid'
        : isMuseError(err, 'MUSE_ERR_ARTIFACT_NOT_FOUND')
          ? 'not_found'
          : isMuseError(err, 'MUSE_ERR_ARTIFACT_VERSION_CONFLICT')
            ? 'conflict'
            : isMuseError(err, 'MUSE_ERR_ARTIFACT_BLOB_COLLECTING')
              ? 'collecting'
              : 'error';
      if (outcome === 'error') this.deps.logger?.error({ err }, 'artifact commit failed');
      else this.deps.logger?.warn({ code: (err as MuseError).code, message: (err as MuseError).message }, 'artifact commit rejected');
      return { ok: false, error: toErrorBody(err) };
    } finally {
      this.deps.metrics?.commits.inc({ outcome });
    }
  }

  private async commit(payload: unknown): Promise<{ outcome: CommitOutcome; response: ArtifactCommitResponse }> {
    const req = parseRequest(payload);
    // A stale writer hears "stale" rather than anything else: its token is judged before its blobs (the commit's
    // script checks it again, atomically with its writes).
    const contents = new Map<string, Buffer>();
    try {
      for (const a of req.artifacts) if (a.content !== undefined) contents.set(a.digest, inlineBlobBytes(a.name, a.digest, a.size, a.content));
    } catch (err) {
      if ((await this.deps.repo.highestToken(req.runId)) > req.fencingToken) return this.stale(req);
      throw err;
    }
    // Blobs the Redis tier keeps are written by the commit's own script (one round trip in all); the others first.
    const inRedis = (bytes: Buffer) => this.deps.blobs.keepsInRedis?.(bytes.length) ?? false;
    const redisBlobs = [...contents].filter(([, bytes]) => inRedis(bytes)).map(([digest, bytes]) => ({ digest, bytes }));
    const others = [...contents.values()].filter((bytes) => !inRedis(bytes));

    if (others.length > 0 || req.artifacts.some((a) => a.content === undefined)) {
      // The token is read while the other blobs are written (side by side, so their GC marks and the read go to
      // Redis as one write, a round trip saved). A stale writer's blob is left to GC like any uncommitted upload.
      const [highest, written] = await Promise.allSettled([this.deps.repo.highestToken(req.runId), Promise.all(others.map((bytes) => this.writeInline(bytes)))]);
      if (highest.status === 'rejected') throw highest.reason;
      if (highest.value > req.fencingToken) return this.stale(req);
      if (written.status === 'rejected') throw written.reason;
    }

    // The others must be stored already.
    for (const a of req.artifacts) {
      if (a.content !== undefined) continue;
      const size = await this.deps.blobs.size(a.digest);
      if (size === null) {
        throw new MuseError('MUSE_ERR_ARTIFACT_NOT_FOUND', `blob ${a.digest} (artifact "${a.name}") is not stored`, {
          details: { name: a.name, digest: a.digest },
        });
      }
      if (size !== a.size) {
        throw new MuseError('MUSE_ERR_REQUEST_INVALID', `artifact "${a.name}" says ${a.size} bytes, blob ${a.digest} has ${size}`, {
          details: { name: a.name, digest: a.digest, size: a.size, storedSize: size },
        });
      }
    }

    const ttlMs = req.ttlSeconds !== undefined ? req.ttlSeconds * 1000 : (this.deps.defaultTtlMs ?? 0);
    const input = { ...req, artifacts: req.artifacts.map(({ content: _bytes, ...meta }) => meta), ttlMs, ...(redisBlobs.length > 0 ? { redisBlobs } : {}) };
    let res = await this.deps.repo.commit(input);
    // GC is deleting one of the blobs that came along: wait for its claim to end, as an upload does (or hear
    // MUSE_ERR_ARTIFACT_BLOB_COLLECTING once the wait runs out), then commit again.
    for (let tries = 0; !res.ok && 'claimed' in res && tries < MAX_CLAIM_WAITS; tries++) {
      if (!this.deps.markPending) break;
      await this.deps.markPending(res.digest);
      res = await this.deps.repo.commit(input);
    }
    if (!res.ok) {
      if ('conflict' in res) {
        throw new MuseError('MUSE_ERR_ARTIFACT_VERSION_CONFLICT', `artifact "${res.name}" is at version ${res.latest}`, {
          details: { runId: req.runId, name: res.name, latestVersion: res.latest },
        });
      }
      if ('collecting' in res || 'claimed' in res) {
        throw new MuseError('MUSE_ERR_ARTIFACT_BLOB_COLLECTING', `blob ${res.digest} was or is being garbage-collected, or was uploaded longer ago than the GC grace period; upload it again`, { details: { digest: res.digest } });
      }
      return this.stale(req);
    }
    const artifacts: ArtifactRef[] = res.artifacts.map(({ meta }) => toArtifactRef(meta));
    this.deps.metrics?.countStored?.(res.stored, redisBlobs);
    const outcome = acceptedOutcome(res.artifacts);
    this.deps.logger?.debug({ runId: req.runId, stepId: req.stepId, attempt: req.attempt, count: artifacts.length, created: res.artifacts.some((a) => a.created) }, 'artifacts committed');
    return { outcome, response: { ok: true, artifacts } };
  }

  /** Writes a blob that came inside the request (checked already) as an upload would: marked pending for GC once its digest is known. */
  private async writeInline(bytes: Buffer): Promise<void> {
    const hooks = this.deps.markPending ? { onDigest: this.deps.markPending } : {};
    const res = this.deps.blobs.putBytes ? await this.deps.blobs.putBytes(bytes, hooks) : await this.deps.blobs.put(Readable.from([bytes]), hooks);
    this.deps.metrics?.blobsWritten?.inc({ dedup: String(res.dedup) });
    if (!res.dedup) this.deps.metrics?.bytesWritten?.inc(res.size);
  }

  private stale(req: ArtifactCommitRequest): { outcome: CommitOutcome; response: ArtifactCommitResponse } {
    this.deps.metrics?.staleTokenRejections.inc();
    this.deps.logger?.warn({ runId: req.runId, stepId: req.stepId, attempt: req.attempt, fencingToken: req.fencingToken }, 'stale fencing token');
    const err = new MuseError('MUSE_ERR_ARTIFACT_STALE_TOKEN', undefined, {
      details: { runId: req.runId, fencingToken: req.fencingToken },
    });
    return { outcome: 'stale', response: { ok: false, error: err.toWire() } };
  }
}

/** How often a commit waits for a GC claim on a blob that came inside it before it gives up (each wait is `markPending`'s). */
const MAX_CLAIM_WAITS = 3;

function parseRequest(payload: unknown): ArtifactCommitRequest {
  const parsed = ArtifactCommitRequestSchema.safeParse(payload);
  if (!parsed.success) {
    throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'invalid artifact commit request', {
      details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
    });
  }
  const req = parsed.data;
  const seen = new Set<string>();
  for (const a of req.artifacts) {
    if (!isDigest(a.digest)) throw new MuseError('MUSE_ERR_REQUEST_INVALID', `artifact "${a.name}": digest must be sha256:<64 hex>`);
    const problem = artifactNameProblem(a.name, seen);
    if (problem) throw new MuseError('MUSE_ERR_REQUEST_INVALID', problem);
  }
  return req;
}

function isMuseError(err: unknown, code: string): boolean {
  return err instanceof MuseError && err.code === code;
}

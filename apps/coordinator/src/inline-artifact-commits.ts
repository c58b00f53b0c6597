/**
 * The coordinator's own commits of a step's small outputs. A report whose artifacts all ride inside it (`content`)
 * and each fit the artifact store's Redis blob tier is committed here, by the store's own fenced script
 * (@muse/artifacts), in one round trip to Redis: no request to the artifact store and no reply, which were three of a
 * chain step's ten hops and a wake-up of one more process per step.
 *
 * Everything else goes to the store, as before: blobs a worker uploaded (the store checks they are there), blobs its
 * tier does not keep, and every commit the script does not take (a stale fencing token, a blob GC is deleting, ...),
 * whose answer, error code and waits included, is then the store's. The script writes nothing it has not accepted but
 * the blobs themselves, and those once only (by digest), so the store committing after it is the same commit.
 * Until the store has published its commit policy (it does when it starts), every commit goes to it.
 * `drawing` makes the same commit under a fencing token the script draws itself, so that the commit can go out in the
 * same write as the coordinator's try at the run's lock: one round trip to Redis for both.
 */
import type { ArtifactCommitRequest, ArtifactCommitResponse } from '@muse/contracts';
import {
  ArtifactCommitCounters,
  acceptedOutcome,
  artifactNameProblem,
  inlineBlobBytes,
  toArtifactRef,
  type ArtifactCommitPolicy,
  type ArtifactRepository,
  type CommitInput,
  type CommitResult,
} from '@muse/artifacts';
import type { RunLockTry } from '@muse/locks';
import type { MuseMetrics } from '@muse/telemetry';

export interface InlineArtifactCommitsDeps {
  repo: Pick<ArtifactRepository, 'commit' | 'commitDrawing'>;
  /** The policy the artifact store published (undefined: none yet, every commit goes to the store). */
  policy: { current(): Promise<ArtifactCommitPolicy | undefined> | ArtifactCommitPolicy | undefined };
  metrics: MuseMetrics;
}

export class InlineArtifactCommits {
  private readonly counters: ArtifactCommitCounters;

  constructor(private readonly deps: InlineArtifactCommitsDeps) {
    this.counters = new ArtifactCommitCounters(deps.metrics);
  }

  /** Commits `req` when it can, as the artifact store would have; undefined when the store must (nothing was committed). */
  async commit(req: ArtifactCommitRequest): Promise<ArtifactCommitResponse | undefined> {
    const input = this.input(req, await this.deps.policy.current());
    if (!input) return undefined;
    return this.accepted(await this.deps.repo.commit({ ...input, fencingToken: req.fencingToken }), input);
  }

  /**
   * `req`'s commit under a fencing token it draws itself, to send in the same write as a try at the run's lock
   * (`RunLocks.withRunLock`'s draw): the returned function sends it before its first await. Undefined when this
   * commit is not one the coordinator makes, or the store's policy is not at hand without a read.
   * The commit answers `response` undefined when the script did not take it (nothing was committed; the store's).
   */
  drawing(req: Omit<ArtifactCommitRequest, 'fencingToken'>): ((lock: RunLockTry) => Promise<{ held: false } | { held: true; token: number; response: ArtifactCommitResponse | undefined }>) | undefined {
    const policy = this.deps.policy.current();
    if (policy instanceof Promise) return undefined;
    const input = this.input(req, policy);
    if (!input) return undefined;
    return async (lock) => {
      const drawn = await this.deps.repo.commitDrawing(input, lock);
      return drawn.held ? { held: true, token: drawn.token, response: this.accepted(drawn.result, input) } : drawn;
    };
  }

  /** The repository's commit input for `req` (its token aside), or undefined when the store must make the commit. */
  private input(req: Omit<ArtifactCommitRequest, 'fencingToken'>, policy: ArtifactCommitPolicy | undefined): (Omit<CommitInput, 'fencingToken'> & { redisBlobs: Array<{ digest: string; bytes: Buffer }> }) | undefined {
    if (!policy || policy.redisBlobBytes <= 0) return undefined;
    const blobs: Array<{ digest: string; bytes: Buffer }> = [];
    const names = new Set<string>();
    for (const a of req.artifacts) {
      // Conditional writes, oddly named or repeated names, uploads and large blobs: the store's.
      if (a.content === undefined || a.ifMatch !== undefined || a.size < 1 || a.size > policy.redisBlobBytes) return undefined;
      if (artifactNameProblem(a.name, names)) return undefined;
      let bytes: Buffer;
      try {
        bytes = inlineBlobBytes(a.name, a.digest, a.size, a.content);
      } catch {
        return undefined; // the store refuses it, with the details
      }
      // One blob once, as the store's commit does (its content map is keyed by digest).
      if (!blobs.some((b) => b.digest === a.digest)) blobs.push({ digest: a.digest, bytes });
    }
    if (blobs.length === 0) return undefined;
    return {
      runId: req.runId,
      project: req.project,
      stepId: req.stepId,
      attempt: req.attempt,
      agentId: req.agentId,
      artifacts: req.artifacts.map(({ content: _bytes, ...meta }) => meta),
      ttlMs: req.ttlSeconds !== undefined ? req.ttlSeconds * 1000 : policy.defaultTtlMs,
      ...(req.replay !== undefined ? { replay: req.replay } : {}),
      redisBlobs: blobs,
    };
  }

  /** The answer to a commit the script took, counted; undefined for one it did not (the store's to make). */
  private accepted(res: CommitResult, input: { redisBlobs: Array<{ digest: string; bytes: Buffer }> }): ArtifactCommitResponse | undefined {
    if (!res.ok) return undefined;
    this.counters.countStored(res.stored, input.redisBlobs);
    this.counters.commits.inc({ outcome: acceptedOutcome(res.artifacts) });
    return {
      ok: true,
      artifacts: res.artifacts.map(({ meta }) => toArtifactRef(meta)),
    };
  }
}

/**
 * How the artifact store commits, as far as a commit made without it needs to know: the largest blob its Redis tier
 * keeps (0: it keeps none) and the retention of artifacts whose workflow names none. The store publishes it in Redis
 * when it starts; the coordinator, which commits a step's small outputs itself, reads it again every `refreshMs`.
 * Replicas of the store share one configuration: the last one started wins.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { MuseNames } from '@muse/contracts';

export const ArtifactCommitPolicySchema = z.object({
  /** The largest blob kept in Redis beside its metadata, in bytes (MUSE_ARTIFACT_REDIS_BLOB_BYTES, at most MUSE_ARTIFACT_MAX_BYTES); 0 = none. */
  redisBlobBytes: z.number().int().min(0),
  /** How long artifacts are kept when their workflow says nothing (MUSE_ARTIFACT_TTL_DAYS), in ms; 0 = forever. */
  defaultTtlMs: z.number().int().min(0),
});
export type ArtifactCommitPolicy = z.infer<typeof ArtifactCommitPolicySchema>;

/** How often a reader looks for a new policy, in ms. */
export const COMMIT_POLICY_REFRESH_MS = 5_000;

export async function publishCommitPolicy(redis: Redis, names: Pick<MuseNames, 'artifactCommitPolicyKey'>, policy: ArtifactCommitPolicy): Promise<void> {
  await redis.set(names.artifactCommitPolicyKey, JSON.stringify(ArtifactCommitPolicySchema.parse(policy)));
}

export class CommitPolicyReader {
  private value: ArtifactCommitPolicy | undefined;
  private readAt = -Infinity;
  private reading: Promise<ArtifactCommitPolicy | undefined> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly names: Pick<MuseNames, 'artifactCommitPolicyKey'>,
    private readonly refreshMs = COMMIT_POLICY_REFRESH_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The policy the store published, read at most `refreshMs` ago; undefined while none is (or it cannot be read). */
  current(): Promise<ArtifactCommitPolicy | undefined> | ArtifactCommitPolicy | undefined {
    if (this.now() - this.readAt < this.refreshMs) return this.value;
    return (this.reading ??= this.read().finally(() => (this.reading = undefined)));
  }

  private async read(): Promise<ArtifactCommitPolicy | undefined> {
    try {
      const raw = await this.redis.get(this.names.artifactCommitPolicyKey);
      const parsed = raw === null ? undefined : ArtifactCommitPolicySchema.safeParse(JSON.parse(raw));
      this.value = parsed?.success ? parsed.data : undefined;
    } catch {
      // Unreadable (Redis away, or not JSON): none for now, so commits go to the store, which says what is wrong.
      this.value = undefined;
    }
    this.readAt = this.now();
    return this.value;
  }
}

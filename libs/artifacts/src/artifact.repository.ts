/**
 * Artifact metadata in Redis: the fenced commit (see artifact-commit.script.ts)
 * and the reads the HTTP API needs.
 */
import type { Redis } from 'ioredis';
import { ArtifactMetaSchema, randomIdBytes, type ArtifactMeta, type ArtifactRef, type MuseNames } from '@muse/contracts';
import type { RunLockTry } from '@muse/locks';
import { evalCached } from '@muse/queues/redis';
import { evalArtifactCommit, evalArtifactCommitDrawing } from './artifact-commit.script.js';

/** `art_` and 20 characters of [a-z0-9] (about 103 bits). */
export const ARTIFACT_ID_PATTERN = /^art_[a-z0-9]{1,64}$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function newArtifactId(): string {
  // 252 = 7 * 36: bytes >= 252 are dropped so every character is equally likely.
  let id = '';
  while (id.length < 20) {
    for (const b of randomIdBytes(24)) {
      if (b < 252 && id.length < 20) id += ID_ALPHABET[b % 36];
    }
  }
  return `art_${id}`;
}

export interface CommitItem {
  name: string;
  digest: string;
  size: number;
  mediaType: string;
  tool?: string;
  toolVersion?: string;
  schema?: string;
  /** Commit only while the name's latest version is this one (0 = new name). */
  ifMatch?: number;
}

export interface CommitInput {
  runId: string;
  project: string;
  stepId: string;
  attempt: number;
  agentId: string;
  fencingToken: number;
  artifacts: CommitItem[];
  /** How long the artifacts are kept, in ms; 0 or unset = forever. */
  ttlMs?: number;
  /** What makes a retried commit a replay (see ArtifactCommitRequestSchema). @default 'attempt' */
  replay?: 'attempt' | 'content';
  /**
   * Small blobs that came inside the request, checked against their digests, for the Redis blob tier
   * (the artifact store's redis-blob-tier.ts): the commit's script writes them, with their pending marks, before it commits.
   */
  redisBlobs?: Array<{ digest: string; bytes: Buffer }>;
}

export type CommitResult =
  /** `stored`: per blob of `redisBlobs`, whether it was new to Redis (false: the same bytes were there already). */
  | { ok: true; artifacts: Array<{ meta: ArtifactMeta; created: boolean }>; stored: boolean[] }
  | { ok: false; stale: true; highestToken: number }
  | { ok: false; conflict: true; name: string; latest: number }
  | { ok: false; collecting: true; digest: string }
  /** GC is deleting a blob of `redisBlobs`: nothing was written; commit again once its claim ends (`BlobGc.markPending` waits for that). */
  | { ok: false; claimed: true; digest: string };

/** A drawing commit's answer: the lock was someone else's (nothing done), or the token drawn and the commit's result. */
export type DrawnCommit = { held: false } | { held: true; token: number; result: CommitResult };

/** A GC claim older than this is from a collector that died mid-delete and no longer holds, in ms. */
export const GC_CLAIM_HOLD_MS = 60_000;

export interface ArtifactRepositoryOptions {
  now?: () => Date;
  newId?: () => string;
}

export class ArtifactRepository {
  private readonly now: () => Date;
  private readonly newId: () => string;

  constructor(
    private readonly redis: Redis,
    private readonly names: MuseNames,
    opts: ArtifactRepositoryOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.newId = opts.newId ?? newArtifactId;
  }

  /**
   * The key remembering which artifact a (run, step, attempt, name) became,
   * so that a retried commit returns it instead of making another version.
   * Step ids and attempts hold no `:`, so the name (which may) is unambiguous.
   */
  commitKey(runId: string, stepId: string, attempt: number, name: string): string {
    return this.names.artifactCommitKey(runId, stepId, attempt, name);
  }

  /** The highest fencing token seen for the run (0 when none). */
  async highestToken(runId: string): Promise<number> {
    const v = await this.redis.get(this.names.artifactFenceKey(runId));
    return v === null ? 0 : Number(v);
  }

  /**
   * Fences and commits atomically. The caller has checked the blobs exist;
   * a blob is never deleted, so that check cannot go stale.
   */
  async commit(input: CommitInput): Promise<CommitResult> {
    const { keys, args, parse } = this.commitCall(input, input.fencingToken);
    return parse((await evalArtifactCommit(this.redis, keys, args)) as Array<number | string>);
  }

  /**
   * The same commit under a fencing token drawn in the same script from the run's counter, only while `lock` holds
   * its holder (artifact-commit.script.ts). The command goes out before the first await: a caller that has just sent
   * its try at the lock on the same auto-pipelined connection sends both in one write, and Redis runs them in order.
   */
  async commitDrawing(input: Omit<CommitInput, 'fencingToken'>, lock: RunLockTry): Promise<DrawnCommit> {
    const { keys, args, parse } = this.commitCall(input, lock.holder);
    keys.push(lock.key, lock.fence);
    const reply = (await evalArtifactCommitDrawing(this.redis, keys, args)) as Array<number | string>;
    if (reply[0] === -1) return { held: false };
    return { held: true, token: Number(reply[0]), result: parse(reply.slice(1)) };
  }

  /** The commit script's KEYS and ARGV for `input`, ARGV[1] `first` (the token, or the drawing script's holder), and how to read its reply. */
  private commitCall(input: Omit<CommitInput, 'fencingToken'>, first: number | string): { keys: string[]; args: Array<string | number | Buffer>; parse: (reply: Array<number | string>) => CommitResult } {
    const createdAt = this.now();
    const keys = [
      this.names.artifactFenceKey(input.runId),
      this.names.runArtifactsKey(input.runId),
      this.names.artifactBlobRefsKey,
      this.names.artifactBlobDeletingKey,
      this.names.artifactExpiryKey,
    ];
    const expiresAt = input.ttlMs ? new Date(createdAt.getTime() + input.ttlMs) : undefined;
    const args: Array<string | number | Buffer> = [first, createdAt.getTime(), expiresAt?.getTime() ?? 0, GC_CLAIM_HOLD_MS, this.names.artifactKey('')];
    for (const a of input.artifacts) {
      const id = this.newId();
      const { head, tail } = splitAroundVersion({
        id,
        name: a.name,
        digest: a.digest,
        size: a.size,
        mediaType: a.mediaType,
        project: input.project,
        runId: input.runId,
        stepId: input.stepId,
        attempt: input.attempt,
        producer: {
          agentId: input.agentId,
          ...(a.tool !== undefined ? { tool: a.tool } : {}),
          ...(a.toolVersion !== undefined ? { toolVersion: a.toolVersion } : {}),
        },
        ...(a.schema !== undefined ? { schema: a.schema } : {}),
        createdAt: createdAt.toISOString(),
        ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}),
      });
      keys.push(
        this.names.artifactVersionKey(input.runId, a.name),
        this.commitKey(input.runId, input.stepId, input.attempt, input.replay === 'content' ? contentReplayName(a.name, a.digest) : a.name),
        this.names.artifactKey(id),
      );
      args.push(id, head, tail, a.digest, a.ifMatch ?? -1);
    }
    keys.push(this.names.artifactBlobPendingKey, this.names.artifactRedisBlobsKey, this.names.artifactRedisBlobTimesKey);
    for (const b of input.redisBlobs ?? []) args.push(b.digest, b.bytes);
    const parse = (reply: Array<number | string>): CommitResult => {
      if (reply[0] === 0) return { ok: false, stale: true, highestToken: Number(reply[1]) };
      if (reply[0] === 2) return { ok: false, conflict: true, name: input.artifacts[Number(reply[1])]!.name, latest: Number(reply[2]) };
      if (reply[0] === 3) return { ok: false, collecting: true, digest: String(reply[1]) };
      if (reply[0] === 4) return { ok: false, claimed: true, digest: String(reply[1]) };
      const artifacts: Array<{ meta: ArtifactMeta; created: boolean }> = [];
      for (let i = 2; i < reply.length; i += 2) {
        artifacts.push({ created: reply[i] === 1, meta: ArtifactMetaSchema.parse(JSON.parse(String(reply[i + 1]))) });
      }
      return { ok: true, artifacts, stored: [...String(reply[1])].map((c) => c === '1') };
    };
    return { keys, args, parse };
  }

  async get(id: string): Promise<ArtifactMeta | null> {
    if (!ARTIFACT_ID_PATTERN.test(id)) return null;
    const raw = await this.redis.get(this.names.artifactKey(id));
    return raw === null ? null : ArtifactMetaSchema.parse(JSON.parse(raw));
  }

  /** Several artifacts by id; missing ones are left out. */
  async getMany(ids: string[]): Promise<ArtifactMeta[]> {
    const valid = ids.filter((id) => ARTIFACT_ID_PATTERN.test(id));
    if (valid.length === 0) return [];
    const raws = await this.redis.mget(...valid.map((id) => this.names.artifactKey(id)));
    return raws.flatMap((raw) => (raw === null ? [] : [ArtifactMetaSchema.parse(JSON.parse(raw))]));
  }

  /** The latest version of a name in a run (0 when none). */
  async latestVersion(runId: string, name: string): Promise<number> {
    return Number((await this.redis.get(this.names.artifactVersionKey(runId, name))) ?? 0);
  }

  /**
   * Retention: removes up to `limit` artifacts whose expiry has passed —
   * metadata, the run's index entry, the replay key — and drops their blob
   * references, each in one atomic step. @returns the removed artifacts
   */
  async expireDue(now: number, limit = 500): Promise<ArtifactMeta[]> {
    const ids = await this.redis.zrangebyscore(this.names.artifactExpiryKey, '-inf', now, 'LIMIT', 0, limit);
    const removed: ArtifactMeta[] = [];
    for (const id of ids) {
      const meta = await this.get(id);
      if (!meta) {
        await this.redis.zrem(this.names.artifactExpiryKey, id);
        continue;
      }
      const keys = [
        this.names.artifactExpiryKey,
        this.names.artifactKey(id),
        this.names.runArtifactsKey(meta.runId),
        this.commitKey(meta.runId, meta.stepId, meta.attempt, meta.name),
        this.names.artifactBlobRefsKey,
        this.commitKey(meta.runId, meta.stepId, meta.attempt, contentReplayName(meta.name, meta.digest)),
      ];
      if ((await evalCached(this.redis, ARTIFACT_EXPIRE_LUA, keys, [id, now, meta.digest])) === 1) removed.push(meta);
    }
    return removed;
  }
}

/**
 * KEYS: expiry ZSET, metadata key, run's artifact ZSET, replay key, blob refs HASH, replay key of a content-keyed write;
 * ARGV: id, now (ms), digest. Removes the artifact if it is (still) due. @returns 1 when removed
 */
const ARTIFACT_EXPIRE_LUA = `
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('DEL', KEYS[2]) == 0 then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[6])
if redis.call('HINCRBY', KEYS[5], ARGV[3], -1) <= 0 then redis.call('HDEL', KEYS[5], ARGV[3]) end
return 1
`;

/** What a commit answers about an artifact (the reference a run event carries). */
export function toArtifactRef(meta: ArtifactMeta): ArtifactRef {
  return { id: meta.id, name: meta.name, version: meta.version, digest: meta.digest, size: meta.size, mediaType: meta.mediaType };
}

/** The name part of a replay key when replays are told apart by content: `#` cannot end a digest, so no name collides. */
export function contentReplayName(name: string, digest: string): string {
  return `${name}#${digest}`;
}

/** `{...meta, version: <v>}` as JSON, cut where the version's digits go. */
export function splitAroundVersion(meta: Omit<ArtifactMeta, 'version'>): { head: string; tail: string } {
  const json = JSON.stringify(meta);
  return { head: `${json.slice(0, -1)},"version":`, tail: '}' };
}

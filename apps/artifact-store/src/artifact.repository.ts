/**
 * Artifact metadata in Redis: the fenced commit (see artifact-commit.script.ts)
 * and the reads the HTTP API needs.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ArtifactMetaSchema, type ArtifactMeta, type MuseNames } from '@muse/contracts';
import { evalArtifactCommit } from './artifact-commit.script.js';

/** `art_` and 20 characters of [a-z0-9] (about 103 bits). */
export const ARTIFACT_ID_PATTERN = /^art_[a-z0-9]{1,64}$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export function newArtifactId(): string {
  // 252 = 7 * 36: bytes >= 252 are dropped so every character is equally likely.
  let id = '';
  while (id.length < 20) {
    for (const b of randomBytes(24)) {
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
}

export interface CommitInput {
  runId: string;
  project: string;
  stepId: string;
  attempt: number;
  agentId: string;
  fencingToken: number;
  artifacts: CommitItem[];
}

export type CommitResult =
  | { ok: true; artifacts: Array<{ meta: ArtifactMeta; created: boolean }> }
  | { ok: false; stale: true; highestToken: number };

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
    const createdAt = this.now();
    const keys = [this.names.artifactFenceKey(input.runId), this.names.runArtifactsKey(input.runId)];
    const args: Array<string | number> = [input.fencingToken, createdAt.getTime()];
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
        producer: { agentId: input.agentId },
        createdAt: createdAt.toISOString(),
      });
      keys.push(
        this.names.artifactVersionKey(input.runId, a.name),
        this.commitKey(input.runId, input.stepId, input.attempt, a.name),
        this.names.artifactKey(id),
      );
      args.push(id, head, tail);
    }
    const reply = (await evalArtifactCommit(this.redis, keys, args)) as Array<number | string>;
    if (reply[0] === 0) return { ok: false, stale: true, highestToken: Number(reply[1]) };
    const artifacts: Array<{ meta: ArtifactMeta; created: boolean }> = [];
    for (let i = 1; i < reply.length; i += 2) {
      artifacts.push({ created: reply[i] === 1, meta: ArtifactMetaSchema.parse(JSON.parse(String(reply[i + 1]))) });
    }
    return { ok: true, artifacts };
  }

  async get(id: string): Promise<ArtifactMeta | null> {
    if (!ARTIFACT_ID_PATTERN.test(id)) return null;
    const raw = await this.redis.get(this.names.artifactKey(id));
    return raw === null ? null : ArtifactMetaSchema.parse(JSON.parse(raw));
  }
}

/** `{...meta, version: <v>}` as JSON, cut where the version's digits go. */
export function splitAroundVersion(meta: Omit<ArtifactMeta, 'version'>): { head: string; tail: string } {
  const json = JSON.stringify(meta);
  return { head: `${json.slice(0, -1)},"version":`, tail: '}' };
}

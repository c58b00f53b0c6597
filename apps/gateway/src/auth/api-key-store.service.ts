/**
 * API keys and projects in Redis, under the namespace: one hash each, keyed by key id and project name. Every request
 * reads its key, so existing keys and projects are kept in memory (`TrackedReads`) and dropped the moment Redis says
 * their hash changed, whoever changed it: a key revoked on one gateway is refused by every gateway from then on.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { TrackedReads } from '@muse/queues';
import { StoredApiKeySchema, ProjectViewSchema, type MuseNames, type ProjectView, type StoredApiKey } from '@muse/contracts';
import { NAMES, REDIS, TRACKED_READS } from '../gateway.tokens.js';

@Injectable()
export class ApiKeyStore {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    @Inject(TRACKED_READS) private readonly tracked: TrackedReads,
  ) {}

  /** The stored key (shared with other requests: never change it), or null. */
  async get(id: string): Promise<StoredApiKey | null> {
    const key = this.names.apiKeysKey;
    return this.tracked.read(
      key,
      id,
      async () => {
        const raw = await this.redis.hget(key, id);
        return raw === null ? null : StoredApiKeySchema.parse(JSON.parse(raw));
      },
      (stored) => stored !== null,
    );
  }

  /** Stores a new key; false when the id is taken (never overwrites). */
  async create(key: StoredApiKey): Promise<boolean> {
    const created = (await this.redis.hsetnx(this.names.apiKeysKey, key.id, JSON.stringify(StoredApiKeySchema.parse(key)))) === 1;
    this.tracked.forget(this.names.apiKeysKey);
    return created;
  }

  async list(): Promise<StoredApiKey[]> {
    const all = await this.redis.hvals(this.names.apiKeysKey);
    return all.map((raw) => StoredApiKeySchema.parse(JSON.parse(raw))).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Marks a key revoked (kept for listings and audit); null when there is no such key. Revoking twice keeps the first time. */
  async revoke(id: string, at: string): Promise<StoredApiKey | null> {
    const k = await this.get(id);
    if (!k) return null;
    if (k.revokedAt !== undefined) return k;
    const revoked = { ...k, revokedAt: at };
    await this.redis.hset(this.names.apiKeysKey, id, JSON.stringify(revoked));
    this.tracked.forget(this.names.apiKeysKey);
    return revoked;
  }

  async count(): Promise<number> {
    return this.redis.hlen(this.names.apiKeysKey);
  }

  /** Creates a project; false when it exists. */
  async createProject(p: ProjectView): Promise<boolean> {
    const created = (await this.redis.hsetnx(this.names.projectsKey, p.name, JSON.stringify(ProjectViewSchema.parse(p)))) === 1;
    this.tracked.forget(this.names.projectsKey);
    return created;
  }

  async projectExists(name: string): Promise<boolean> {
    const key = this.names.projectsKey;
    return this.tracked.read(key, name, async () => (await this.redis.hexists(key, name)) === 1, (exists) => exists);
  }

  async listProjects(): Promise<ProjectView[]> {
    const all = await this.redis.hvals(this.names.projectsKey);
    return all.map((raw) => ProjectViewSchema.parse(JSON.parse(raw))).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Takes the one-time bootstrap marker: true for the one replica that should generate a key. */
  async claimBootstrap(): Promise<boolean> {
    return (await this.redis.set(this.bootstrapMarker, new Date().toISOString(), 'NX')) === 'OK';
  }

  /** Gives the marker back when generating the key failed, so the next start tries again. */
  async releaseBootstrap(): Promise<void> {
    await this.redis.del(this.bootstrapMarker);
  }

  private get bootstrapMarker(): string {
    return `${this.names.apiKeysKey}:bootstrapped`;
  }
}

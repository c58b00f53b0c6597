/** API keys and projects in Redis, under the namespace: one hash each, keyed by key id and project name. */
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { StoredApiKeySchema, ProjectViewSchema, type MuseNames, type ProjectView, type StoredApiKey } from '@muse/contracts';
import { NAMES, REDIS } from '../gateway.tokens.js';

@Injectable()
export class ApiKeyStore {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
  ) {}

  async get(id: string): Promise<StoredApiKey | null> {
    const raw = await this.redis.hget(this.names.apiKeysKey, id);
    return raw === null ? null : StoredApiKeySchema.parse(JSON.parse(raw));
  }

  /** Stores a new key; false when the id is taken (never overwrites). */
  async create(key: StoredApiKey): Promise<boolean> {
    return (await this.redis.hsetnx(this.names.apiKeysKey, key.id, JSON.stringify(StoredApiKeySchema.parse(key)))) === 1;
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
    return revoked;
  }

  async count(): Promise<number> {
    return this.redis.hlen(this.names.apiKeysKey);
  }

  /** Creates a project; false when it exists. */
  async createProject(p: ProjectView): Promise<boolean> {
    return (await this.redis.hsetnx(this.names.projectsKey, p.name, JSON.stringify(ProjectViewSchema.parse(p)))) === 1;
  }

  async projectExists(name: string): Promise<boolean> {
    return (await this.redis.hexists(this.names.projectsKey, name)) === 1;
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

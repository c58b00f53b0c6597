/**
 * The workflow registry, in Redis. Per (project, name) one hash at
 * `workflowKey(project, name)`:
 *
 *   latest        -> newest version number
 *   description   -> the newest version's description ('' when none)
 *   digest:<v>    -> content digest of version v (compared inside Lua)
 *   meta:<v>      -> JSON {digest, createdAt}
 *   def:<v>       -> JSON definition
 *
 * and one sorted set at `workflowsKey`, every member `<project>:<name>` with
 * score 0, listed per project by lexicographic range. Registering a version
 * is one Lua script, so two concurrent registrations never get the same
 * number and identical content never gets a second one.
 */
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { MuseError, WORKFLOW_NAME_PATTERN, type MuseNames, type StoredWorkflow, type WorkflowDefinition } from '@muse/contracts';
import { parseWorkflowDefinition as parseDefinition, parseWorkflowMeta as parseMeta, readWorkflowVersion, resolveWorkflow, storedWorkflow as stored, type TrackedReads, type WorkflowVersionMeta as VersionMeta } from '@muse/queues';
import { contentDigest } from '../common/canonical-json.js';
import { NAMES, REDIS, TRACKED_READS } from '../gateway.tokens.js';

// KEYS[1] workflow hash, KEYS[2] index; ARGV digest, definition JSON, meta JSON, description, index member.
const REGISTER_LUA = `
local latest = tonumber(redis.call('HGET', KEYS[1], 'latest') or '0')
if latest > 0 and redis.call('HGET', KEYS[1], 'digest:' .. latest) == ARGV[1] then
  return {latest, 0}
end
local v = latest + 1
redis.call('HSET', KEYS[1], 'latest', v, 'description', ARGV[4], 'digest:' .. v, ARGV[1], 'meta:' .. v, ARGV[3], 'def:' .. v, ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[5])
return {v, 1}
`;


export interface Registered {
  name: string;
  version: number;
  /** False when the content was identical to the latest version, which is returned instead. */
  created: boolean;
}

export interface WorkflowSummary {
  name: string;
  latestVersion: number;
  description?: string;
}

export interface WorkflowHistory {
  name: string;
  latest: StoredWorkflow;
  versions: Array<{ version: number; digest: string; createdAt: string }>;
}

@Injectable()
export class WorkflowRegistry {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    /** Where resolved versions are kept between submissions, dropped when Redis says the workflow changed; unset = read every time. */
    @Optional() @Inject(TRACKED_READS) private readonly tracked?: TrackedReads,
  ) {}

  async register(project: string, definition: WorkflowDefinition, now = new Date()): Promise<Registered> {
    const digest = contentDigest(definition);
    const meta: VersionMeta = { digest, createdAt: now.toISOString() };
    const res = (await this.redis.eval(
      REGISTER_LUA,
      2,
      this.names.workflowKey(project, definition.name),
      this.names.workflowsKey,
      digest,
      JSON.stringify(definition),
      JSON.stringify(meta),
      definition.description ?? '',
      `${project}:${definition.name}`,
    )) as [number, number];
    // This gateway's next submission sees the new version at once (Redis tells every gateway a moment later).
    this.tracked?.forget(this.names.workflowKey(project, definition.name));
    // A workflow with `on: {subject}` starts on that subject's messages from now on (the latest version decides at each message).
    if (definition.on) await this.redis.sadd(triggerSetKey(this.names, project, definition.on.subject), definition.name);
    return { name: definition.name, version: Number(res[0]), created: Number(res[1]) === 1 };
  }

  async list(project: string): Promise<WorkflowSummary[]> {
    // Members `<project>:<name>` sort between `<project>:` and `<project>;` (';' follows ':').
    const members = await this.redis.zrangebylex(this.names.workflowsKey, `[${project}:`, `(${project};`);
    // A project that itself contains ':' could match another project's prefix;
    // workflow names never contain ':', so such members are dropped here.
    const names = members.map((m) => m.slice(project.length + 1)).filter((n) => WORKFLOW_NAME_PATTERN.test(n));
    if (names.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const name of names) pipe.hmget(this.names.workflowKey(project, name), 'latest', 'description');
    const rows = (await pipe.exec()) ?? [];
    const out: WorkflowSummary[] = [];
    names.forEach((name, i) => {
      const [err, value] = rows[i] ?? [null, null];
      if (err) throw err;
      const [latest, description] = value as [string | null, string | null];
      if (latest === null) return;
      out.push({ name, latestVersion: Number(latest), ...(description ? { description } : {}) });
    });
    return out;
  }

  /** Every version's digest and date, and the latest in full; null for an unknown workflow. */
  async history(project: string, name: string): Promise<WorkflowHistory | null> {
    if (!WORKFLOW_NAME_PATTERN.test(name)) return null;
    const key = this.names.workflowKey(project, name);
    const latestRaw = await this.redis.hget(key, 'latest');
    if (latestRaw === null) return null;
    const latest = Number(latestRaw);
    const fields = Array.from({ length: latest }, (_, i) => `meta:${i + 1}`);
    const [metas, def] = await Promise.all([this.redis.hmget(key, ...fields), this.redis.hget(key, `def:${latest}`)]);
    const versions = metas.flatMap((raw, i) => (raw === null ? [] : [{ version: i + 1, ...parseMeta(raw) }]));
    const latestMeta = versions.at(-1);
    if (def === null || latestMeta?.version !== latest) throw new MuseError('MUSE_ERR_INTERNAL', `workflow ${project}/${name}: version ${latest} is incomplete`);
    return { name, latest: stored(project, name, latestMeta, parseDefinition(def)), versions };
  }

  async getVersion(project: string, name: string, version: number): Promise<StoredWorkflow | null> {
    return readWorkflowVersion(this.redis, this.names, project, name, version);
  }

  /** The version a run pins: the one asked for, or the latest. Throws MUSE_ERR_WORKFLOW_NOT_FOUND. */
  async resolve(project: string, name: string, version?: number): Promise<StoredWorkflow> {
    const load = async () => deepFreeze(await resolveWorkflow(this.redis, this.names, project, name, version));
    // Kept only while it exists (made-up names cannot fill memory), and frozen: every submission shares it.
    const found = this.tracked
      ? await this.tracked.read(this.names.workflowKey(project, name), version === undefined ? 'latest' : `version:${version}`, load, (w) => w !== null)
      : await load();
    if (!found) throw notFound(name, version);
    return found;
  }
}

/** `value`, and everything in it, made read-only. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Redis set of the workflows of a project that a trigger subject starts. */
export function triggerSetKey(names: MuseNames, project: string, subject: string): string {
  return `${names.triggersKey}:${project}:${subject}`;
}

export function notFound(name: string, version?: number): MuseError {
  const what = version === undefined ? `workflow "${name}"` : `version ${version} of workflow "${name}"`;
  return new MuseError('MUSE_ERR_WORKFLOW_NOT_FOUND', `No ${what}`, { details: { name, ...(version !== undefined ? { version } : {}) } });
}

/**
 * Reading registered workflows from Redis (the gateway's registry writes them; the coordinator reads them to start
 * sub-workflow children). Per (project, name) one hash: `latest`, `meta:<v>` (JSON {digest, createdAt}), `def:<v>`.
 */
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { evalCached } from './redis-script.js';
import { z } from 'zod';
import { WORKFLOW_NAME_PATTERN, WorkflowDefinitionSchema, type MuseNames, type StoredWorkflow, type WorkflowDefinition } from '@muse/contracts';

const VersionMetaSchema = z.object({ digest: z.string(), createdAt: z.string() });
export type WorkflowVersionMeta = z.infer<typeof VersionMetaSchema>;

// What Redis holds is parsed like any other input: a bad record is an error, never a wrong answer.
export function parseWorkflowMeta(raw: string): WorkflowVersionMeta {
  return VersionMetaSchema.parse(JSON.parse(raw));
}

/** Definitions parsed lately (256, the least recently used first out), by their stored JSON: a version never changes, and a busy workflow is submitted again and again. */
const parsedDefinitions = new LRUCache<string, WorkflowDefinition>({ max: 256 });

export function parseWorkflowDefinition(raw: string): WorkflowDefinition {
  const known = parsedDefinitions.get(raw);
  if (known) return structuredClone(known);
  const def = WorkflowDefinitionSchema.parse(JSON.parse(raw));
  parsedDefinitions.set(raw, def);
  return structuredClone(def);
}

export function storedWorkflow(project: string, name: string, meta: WorkflowVersionMeta & { version: number }, definition: WorkflowDefinition): StoredWorkflow {
  return { project, name, version: meta.version, digest: meta.digest, createdAt: meta.createdAt, definition };
}

/** One version of a project's workflow; null when there is none. */
export async function readWorkflowVersion(redis: Redis, names: MuseNames, project: string, name: string, version: number): Promise<StoredWorkflow | null> {
  if (!WORKFLOW_NAME_PATTERN.test(name) || !Number.isSafeInteger(version) || version < 1) return null;
  const [meta, def] = await redis.hmget(names.workflowKey(project, name), `meta:${version}`, `def:${version}`);
  if (meta == null || def == null) return null;
  return storedWorkflow(project, name, { version, ...parseWorkflowMeta(meta) }, parseWorkflowDefinition(def));
}

// The latest version, its meta and its definition in one round trip.
const READ_LATEST = `
local v = redis.call('HGET', KEYS[1], 'latest')
if not v then return nil end
return {v, redis.call('HGET', KEYS[1], 'meta:' .. v), redis.call('HGET', KEYS[1], 'def:' .. v)}
`;

/** The version asked for, or the latest; null when there is none. */
export async function resolveWorkflow(redis: Redis, names: MuseNames, project: string, name: string, version?: number): Promise<StoredWorkflow | null> {
  if (version !== undefined) return readWorkflowVersion(redis, names, project, name, version);
  if (!WORKFLOW_NAME_PATTERN.test(name)) return null;
  const found = (await evalCached(redis, READ_LATEST, [names.workflowKey(project, name)], [])) as [string, string | null, string | null] | null;
  if (!found) return null;
  const [v, meta, def] = found;
  if (meta == null || def == null) return null;
  return storedWorkflow(project, name, { version: Number(v), ...parseWorkflowMeta(meta) }, parseWorkflowDefinition(def));
}

/**
 * Reading registered workflows from Redis (the gateway's registry writes them; the coordinator reads them to start
 * sub-workflow children). Per (project, name) one hash: `latest`, `meta:<v>` (JSON {digest, createdAt}), `def:<v>`.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { WORKFLOW_NAME_PATTERN, WorkflowDefinitionSchema, type MuseNames, type StoredWorkflow, type WorkflowDefinition } from '@muse/contracts';

const VersionMetaSchema = z.object({ digest: z.string(), createdAt: z.string() });
export type WorkflowVersionMeta = z.infer<typeof VersionMetaSchema>;

// What Redis holds is parsed like any other input: a bad record is an error, never a wrong answer.
export function parseWorkflowMeta(raw: string): WorkflowVersionMeta {
  return VersionMetaSchema.parse(JSON.parse(raw));
}

export function parseWorkflowDefinition(raw: string): WorkflowDefinition {
  return WorkflowDefinitionSchema.parse(JSON.parse(raw));
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

/** The version asked for, or the latest; null when there is none. */
export async function resolveWorkflow(redis: Redis, names: MuseNames, project: string, name: string, version?: number): Promise<StoredWorkflow | null> {
  let v = version;
  if (v === undefined && WORKFLOW_NAME_PATTERN.test(name)) {
    const latest = await redis.hget(names.workflowKey(project, name), 'latest');
    v = latest === null ? undefined : Number(latest);
  }
  return v === undefined ? null : readWorkflowVersion(redis, names, project, name, v);
}

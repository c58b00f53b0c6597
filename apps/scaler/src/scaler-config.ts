/**
 * The pools file (`MUSE_SCALER_CONFIG`, TOML or YAML, chosen by extension):
 * the seed's keys (001, section 4.1), one table per role, under
 * `orchestration.scaling`:
 *
 *     [orchestration.scaling.defaults]      # every role ("*" works too)
 *     cooldown_secs = 30
 *     [orchestration.scaling.executor]
 *     min_pool_size = 1
 *     max_pool_size = 8
 *     scale_up_threshold = 10               # work items in queue per extra worker
 *     scale_down_threshold = 2
 *     idle_timeout_mins = 5
 *     policy = "queue_depth"                # or "resource", "throughput"
 *     cpu_threshold = 0.8                   # resource: target mean CPU (share of a core)
 *     memory_threshold = 0.8                # resource: target mean memory (share)
 *     target_items_per_minute = 60          # throughput: per worker
 *
 * Unknown keys, unknown policies and bad numbers stop the scaler at start with
 * `MUSE_ERR_SCALER_CONFIG_INVALID` naming the file, the role and the key.
 * The file's snake_case keys map onto `PoolPolicyOverrides` (camelCase, ms).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { MuseError, ROLE_PATTERN } from '@muse/contracts';

import { policyFor, type PoolPolicyOverrides } from './scaling.policy.js';

const require = createRequire(import.meta.url);
/** The `yaml` package, loaded the first time YAML is read (a YAML scaler file): a service that reads none does without its 72 modules, ~0.8 MB of heap. */
const yaml = (): typeof import('yaml') => require('yaml') as typeof import('yaml');

const POLICY_KINDS = { queue_depth: 'queueDepth', resource: 'resource', throughput: 'throughput' } as const;

const RoleTableSchema = z.strictObject({
  min_pool_size: z.number().int().min(0).optional(),
  max_pool_size: z.number().int().min(1).optional(),
  scale_up_threshold: z.number().int().min(1).optional(),
  scale_down_threshold: z.number().int().min(0).optional(),
  /** Minutes; fractions allowed (0.05 = 3 s, for tests). */
  idle_timeout_mins: z.number().min(0).optional(),
  /** Seconds; fractions allowed. */
  cooldown_secs: z.number().min(0).optional(),
  policy: z.enum(Object.keys(POLICY_KINDS) as [keyof typeof POLICY_KINDS, ...Array<keyof typeof POLICY_KINDS>]).optional(),
  cpu_threshold: z.number().gt(0).max(64).optional(),
  memory_threshold: z.number().gt(0).max(1).optional(),
  target_items_per_minute: z.number().gt(0).optional(),
});
type RoleTable = z.infer<typeof RoleTableSchema>;

const FileSchema = z.strictObject({
  orchestration: z.strictObject({
    scaling: z.record(
      z.string().refine((k) => k === '*' || k === 'defaults' || (ROLE_PATTERN.test(k) && k.length <= 64), { message: 'not a role name (or "defaults")' }),
      RoleTableSchema,
    ),
  }),
});

function toOverrides(t: RoleTable): PoolPolicyOverrides[string] {
  const o: PoolPolicyOverrides[string] = {};
  if (t.min_pool_size !== undefined) o.min = t.min_pool_size;
  if (t.max_pool_size !== undefined) o.max = t.max_pool_size;
  if (t.scale_up_threshold !== undefined) o.scaleUpThreshold = t.scale_up_threshold;
  if (t.scale_down_threshold !== undefined) o.scaleDownThreshold = t.scale_down_threshold;
  if (t.idle_timeout_mins !== undefined) o.idleTimeoutMs = Math.round(t.idle_timeout_mins * 60_000);
  if (t.cooldown_secs !== undefined) o.cooldownMs = Math.round(t.cooldown_secs * 1000);
  if (t.policy !== undefined) o.kind = POLICY_KINDS[t.policy];
  if (t.cpu_threshold !== undefined) o.cpu = t.cpu_threshold;
  if (t.memory_threshold !== undefined) o.memory = t.memory_threshold;
  if (t.target_items_per_minute !== undefined) o.targetPerMinute = t.target_items_per_minute;
  return o;
}

function invalid(file: string, message: string, details?: unknown, cause?: unknown): MuseError {
  return new MuseError('MUSE_ERR_SCALER_CONFIG_INVALID', `${file}: ${message}`, { details, cause });
}

/** Parses the text of a pools file; `file` names it in errors and picks the syntax (`.toml`, else YAML, which also reads JSON). */
export function parseScalerConfig(text: string, file: string): PoolPolicyOverrides {
  let raw: unknown;
  try {
    raw = extname(file).toLowerCase() === '.toml' ? parseToml(text) : yaml().parse(text);
  } catch (err) {
    throw invalid(file, `not valid ${extname(file).toLowerCase() === '.toml' ? 'TOML' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`, undefined, err);
  }
  const res = FileSchema.safeParse(raw);
  if (!res.success) {
    const issues = res.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw invalid(file, issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; '), { issues });
  }
  const overrides: PoolPolicyOverrides = {};
  for (const [key, table] of Object.entries(res.data.orchestration.scaling)) {
    overrides[key === 'defaults' ? '*' : key] = { ...overrides[key === 'defaults' ? '*' : key], ...toOverrides(table) };
  }
  // Each role's merged policy must hold together (min <= max) now, not at the first evaluation.
  for (const role of Object.keys(overrides)) {
    try {
      policyFor(role === '*' ? '__every_role' : role, overrides);
    } catch (err) {
      const first = err instanceof z.ZodError ? (err.issues[0]?.message ?? 'invalid') : (err as Error).message;
      throw invalid(file, `orchestration.scaling.${role === '*' ? 'defaults' : role}: ${first}`, undefined, err);
    }
  }
  return overrides;
}

/** Reads the pools file, or returns no overrides when `path` is unset. */
export function loadScalerConfig(path: string | undefined): PoolPolicyOverrides {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw invalid(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, undefined, err);
  }
  return parseScalerConfig(text, path);
}

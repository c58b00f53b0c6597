/**
 * Recorded model calls (`llm-call.json`, schema `muse.llm-call/v1`): what was
 * asked of the provider chain, with every parameter that decides the answer,
 * and what came back. A call is keyed by the sha256 of its request in
 * canonical JSON (keys sorted, no whitespace), so a replay can tell at once
 * whether it is asking the same question, and name the fields that differ
 * when it is not.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const LLM_CALL_SCHEMA = 'muse.llm-call/v1';
/** The artifact name of a step attempt's recorded call. */
export const LLM_CALL_ARTIFACT = 'llm-call.json';

/** Everything that decides a model's answer. Hashed whole: a change to any field is a divergence. */
export const LlmCallRequestSchema = z.object({
  model: z.string(),
  /** The agent role, which picks the provider chain. */
  role: z.string(),
  messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })),
  temperature: z.number(),
  topP: z.number(),
  seed: z.number().int(),
  maxOutputTokens: z.number().int(),
  /** sha256 of the step's prompt template as defined (before rendering). */
  promptTemplateHash: z.string(),
  /** Tool name → schema version of the tools offered to the model (none yet = `{}`). */
  toolSchemaVersions: z.record(z.string(), z.string()),
});
export type LlmCallRequest = z.infer<typeof LlmCallRequestSchema>;

export const LlmCallRecordSchema = z.object({
  schema: z.literal(LLM_CALL_SCHEMA),
  runId: z.string(),
  stepId: z.string(),
  index: z.number().int().optional(),
  attempt: z.number().int(),
  /** The workflow version the step came from; recorded, not hashed (a new version with the same prompt still matches). */
  definitionVersion: z.number().int().optional(),
  /** The provider chain's answering provider. */
  provider: z.string(),
  request: LlmCallRequestSchema,
  requestHash: z.string(),
  response: z.object({
    text: z.string(),
    model: z.string(),
    usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() }),
    cost: z.number().optional(),
    fallbacks: z.array(z.object({ provider: z.string(), code: z.string(), message: z.string() })).optional(),
  }),
  timing: z.object({ startedAt: z.string(), durationMs: z.number() }),
});
export type LlmCallRecord = z.infer<typeof LlmCallRecordSchema>;

/** JSON with object keys sorted at every depth and no whitespace: one text per value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** `sha256:<hex>` of the request's canonical JSON. */
export function requestHash(req: LlmCallRequest): string {
  return `sha256:${createHash('sha256').update(canonicalJson(req), 'utf8').digest('hex')}`;
}

/** One field that differs between a recorded request and a replayed one; long texts are cut to their first difference. */
export interface RequestFieldDiff {
  field: string;
  expected: unknown;
  actual: unknown;
}

/** The top-level fields of two requests that differ (messages compared by content), at most `max` of them. */
export function diffRequests(expected: LlmCallRequest, actual: LlmCallRequest, max = 10): RequestFieldDiff[] {
  const out: RequestFieldDiff[] = [];
  const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  for (const k of keys) {
    const a = (expected as Record<string, unknown>)[k];
    const b = (actual as Record<string, unknown>)[k];
    if (canonicalJson(a) === canonicalJson(b)) continue;
    if (k === 'messages') {
      const ea = expected.messages;
      const ba = actual.messages;
      for (let i = 0; i < Math.max(ea.length, ba.length); i++) {
        const x = ea[i]?.content;
        const y = ba[i]?.content;
        if (x !== y) out.push({ field: `messages[${i}].content`, ...excerpt(x, y) });
      }
    } else {
      out.push({ field: k, expected: a, actual: b });
    }
    if (out.length >= max) break;
  }
  return out.slice(0, max);
}

/** Both texts from a little before their first difference, at most 120 characters each. */
function excerpt(x: string | undefined, y: string | undefined): { expected: unknown; actual: unknown } {
  if (x === undefined || y === undefined) return { expected: x ?? null, actual: y ?? null };
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  const from = Math.max(0, i - 20);
  const cut = (s: string) => `${from > 0 ? '…' : ''}${s.slice(from, from + 120)}${s.length > from + 120 ? '…' : ''}`;
  return { expected: cut(x), actual: cut(y) };
}

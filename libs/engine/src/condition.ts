/**
 * CEL expressions of a definition (`when:`), on @marcbachmann/cel-js: a
 * maintained, dependency-free CEL implementation (non-Turing-complete, no
 * `eval`). Expressions see two variables, `input` (the run's input) and
 * `steps` (`steps.<id>.status`, and `steps.<id>.output` once it succeeded).
 */
import { createRequire } from 'node:module';
import type { Environment } from '@marcbachmann/cel-js';

const require = createRequire(import.meta.url);
let shared: Environment | undefined;

/**
 * One environment for all expressions (parsing caches nothing per run), made at the first expression: cel-js
 * loads then (~1 MB of heap), so a gateway or coordinator whose workflows have no `when:` or `forEach:` never
 * loads it.
 */
function env(): Environment {
  if (shared) return shared;
  const { Environment: Env } = require('@marcbachmann/cel-js') as typeof import('@marcbachmann/cel-js');
  return (shared = new Env({ unlistedVariablesAreDyn: false }).registerVariable('input', 'map').registerVariable('steps', 'map'));
}

export class ConditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConditionError';
  }
}

/** First line of a cel-js error (the rest is a caret diagram). */
function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.trim();
}

/**
 * Checks an expression at registration: it must parse, name only `input` and
 * `steps`, and be able to give `want` (`bool` for `when`).
 * @returns null when it is fine, else a message
 */
export function checkExpression(expr: string, want: 'bool' | 'list' | 'key'): string | null {
  let res: { valid: boolean; type?: string; error?: unknown };
  try {
    res = env().check(expr) as typeof res;
  } catch (err) {
    return `not a valid CEL expression: ${firstLine(err)}`;
  }
  if (!res.valid) return `not a valid CEL expression: ${firstLine(res.error)}`;
  const ok =
    res.type === undefined ||
    res.type === 'dyn' ||
    res.type === want ||
    (want === 'list' && res.type.startsWith('list<')) ||
    (want === 'key' && (res.type === 'string' || res.type === 'int' || res.type === 'uint' || res.type === 'double' || res.type === 'bool'));
  if (!ok) return `must give a ${want === 'key' ? 'string' : want}, gives ${res.type}`;
  return null;
}

/** Evaluates an expression; a CEL error becomes a ConditionError with its first line. */
function evaluate(expr: string, ctx: { input: unknown; steps: unknown }): unknown {
  try {
    return env().evaluate(expr, ctx as Record<string, unknown>);
  } catch (err) {
    throw new ConditionError(firstLine(err));
  }
}

/** Evaluates a `forEach:`; anything but a list is an error. Values come back as JSON (CEL integers are bigints). */
export function evaluateList(expr: string, ctx: { input: unknown; steps: unknown }): unknown[] {
  const value = evaluate(expr, ctx);
  if (!Array.isArray(value)) throw new ConditionError(`gave ${value === null ? 'null' : typeof value}, not a list`);
  return value.map(toJson);
}

function toJson(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(toJson);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), toJson(x)]));
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}

/** Evaluates a `when:`; anything but a boolean result is an error. */
export function evaluateCondition(expr: string, ctx: { input: unknown; steps: unknown }): boolean {
  const value = evaluate(expr, ctx);
  if (typeof value !== 'boolean') throw new ConditionError(`gave ${typeof value}, not a boolean`);
  return value;
}

/** Longest concurrency key kept (a key is part of Redis key names). */
export const MAX_CONCURRENCY_KEY_LENGTH = 512;

/** Evaluates a `concurrency.key`: a string (numbers and booleans as text); anything else is an error. */
export function evaluateKey(expr: string, ctx: { input: unknown; steps: unknown }): string {
  const value = evaluate(expr, ctx);
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'bigint' && typeof value !== 'boolean') {
    throw new ConditionError(`gave ${value === null ? 'null' : typeof value}, not a string`);
  }
  const key = String(value);
  if (key.length === 0 || key.length > MAX_CONCURRENCY_KEY_LENGTH) throw new ConditionError(`gave a key of ${key.length} characters (1 to ${MAX_CONCURRENCY_KEY_LENGTH})`);
  return key;
}

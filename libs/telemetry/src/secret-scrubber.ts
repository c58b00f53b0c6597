/**
 * Removes known secret values from text: the one place where Muse scrubs
 * secrets from logs (every pino line of the process), step outputs, error
 * details, artifacts and the prompts sent to model providers.
 *
 * Redaction by path (pino's `redact`) only catches secrets under known keys;
 * a secret echoed by a shell step or pasted into a prompt is just text, so it
 * is found by value. Each value is replaced by `[redacted:<NAME>]`, longest
 * value first (so a secret containing another is replaced whole), in its raw
 * form and in its JSON-escaped form (log lines and JSON payloads escape `"`,
 * `\` and control characters).
 */

/** Values shorter than this are not scrubbed: replacing every "a" or "1" in every log line would destroy the logs and protect nothing. */
export const MIN_SECRET_LENGTH = 4;

export class SecretScrubber {
  private readonly values = new Map<string, string>();
  private pattern: RegExp | null = null;
  private replacements = new Map<string, string>();

  /** Registers a secret; later calls with the same value keep the first name. Values under MIN_SECRET_LENGTH are ignored. */
  add(name: string, value: string): void {
    if (value.length < MIN_SECRET_LENGTH || this.values.has(value)) return;
    this.values.set(value, name);
    this.pattern = null;
  }

  get size(): number {
    return this.values.size;
  }

  /** `text` with every known secret value replaced by `[redacted:NAME]`. */
  scrub(text: string): string {
    if (this.values.size === 0 || text.length === 0) return text;
    const re = this.compile();
    return text.replace(re, (m) => this.replacements.get(m) ?? '[redacted]');
  }

  /** Scrubs every string inside a JSON-like value (objects, arrays), returning a copy. */
  scrubDeep<T>(value: T): T {
    if (this.values.size === 0) return value;
    return walk(value, (s) => this.scrub(s)) as T;
  }

  private compile(): RegExp {
    if (this.pattern) return this.pattern;
    const forms = new Map<string, string>();
    for (const [value, name] of this.values) {
      const tag = `[redacted:${name}]`;
      forms.set(value, tag);
      const escaped = JSON.stringify(value).slice(1, -1);
      if (escaped !== value) forms.set(escaped, tag);
    }
    const keys = [...forms.keys()].sort((a, b) => b.length - a.length);
    this.replacements = forms;
    this.pattern = new RegExp(keys.map(escapeRegExp).join('|'), 'g');
    return this.pattern;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function walk(v: unknown, f: (s: string) => string): unknown {
  if (typeof v === 'string') return f(v);
  if (Array.isArray(v)) return v.map((x) => walk(x, f));
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x, f);
    return out;
  }
  return v;
}

/**
 * The process's scrubber: every logger made by `createLogger` passes its
 * lines through it, so registering a secret here (the agent worker does, for
 * every secret it can resolve) keeps it out of every log line of the process.
 */
export const processScrubber = new SecretScrubber();

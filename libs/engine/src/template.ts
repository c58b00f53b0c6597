/**
 * `{{ path }}` templates. A path is dotted segments: `input.repo`,
 * `steps.plan.output.text`, `steps.scan.output.files.0`. No expressions and
 * no code: templates are data, checked at registration and rendered by the
 * coordinator when a step is queued.
 */
const TAG = /\{\{([\s\S]*?)\}\}/g;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

export interface TemplateRef {
  /** The path as written, trimmed. */
  path: string;
  segments: string[];
}

export type ParseResult = { ok: true; refs: TemplateRef[] } | { ok: false; message: string };

/** Finds every `{{ path }}` in `text`, or says what is wrong with the first bad one. */
export function parseTemplate(text: string): ParseResult {
  const refs: TemplateRef[] = [];
  let m: RegExpExecArray | null;
  TAG.lastIndex = 0;
  let lastEnd = 0;
  while ((m = TAG.exec(text)) !== null) {
    if (text.slice(lastEnd, m.index).includes('}}')) return { ok: false, message: `unmatched "}}" before position ${m.index}` };
    lastEnd = m.index + m[0].length;
    const path = m[1]!.trim();
    if (path === '') return { ok: false, message: `empty template tag at position ${m.index}` };
    const segments = path.split('.');
    if (!segments.every((s) => SEGMENT.test(s))) return { ok: false, message: `"${path}" is not a path like input.name or steps.<id>.output.<field>` };
    refs.push({ path, segments });
  }
  const rest = text.slice(lastEnd);
  if (rest.includes('{{')) return { ok: false, message: `unclosed "{{" at position ${lastEnd + rest.indexOf('{{')}` };
  if (rest.includes('}}')) return { ok: false, message: `unmatched "}}" at position ${lastEnd + rest.indexOf('}}')}` };
  return { ok: true, refs };
}

export interface TemplateContext {
  input: Record<string, unknown>;
  steps: Record<string, { output?: unknown; status?: string }>;
  /** The element and its position, in the templates of a `forEach` step. */
  item?: unknown;
  index?: number;
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

export function resolvePath(ctx: TemplateContext, segments: string[]): unknown {
  let cur: unknown = ctx;
  for (const seg of segments) {
    if (cur === null || cur === undefined || typeof cur !== 'object') return undefined;
    cur = Object.prototype.hasOwnProperty.call(cur, seg) ? (cur as Record<string, unknown>)[seg] : undefined;
  }
  return cur;
}

/**
 * Renders `text`. Strings go in as they are, other values as JSON. A path
 * that resolves to nothing is an error, not an empty string: a prompt built
 * on a missing input is a bug to surface, not to hide.
 */
export function renderTemplate(text: string, ctx: TemplateContext): string {
  const parsed = parseTemplate(text);
  if (!parsed.ok) throw new TemplateError(parsed.message);
  return text.replace(TAG, (_all, raw: string) => {
    const path = raw.trim();
    const value = resolvePath(ctx, path.split('.'));
    if (value === undefined) throw new TemplateError(`"${path}" is not set`);
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}

/** One whole tag and nothing else: `{{ steps.a.output }}`. */
const WHOLE_TAG = /^\s*\{\{([^{}]*)\}\}\s*$/;

/**
 * Renders a JSON value whose strings are templates (a sub-workflow's `input`). A string that is one whole tag
 * passes the value it names as it is (an object stays an object); other strings render as text.
 */
export function renderValue(value: unknown, ctx: TemplateContext): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_TAG.exec(value);
    if (whole) {
      const path = whole[1]!.trim();
      if (parseTemplate(value).ok) {
        const v = resolvePath(ctx, path.split('.'));
        if (v === undefined) throw new TemplateError(`"${path}" is not set`);
        return v;
      }
    }
    return renderTemplate(value, ctx);
  }
  if (Array.isArray(value)) return value.map((v) => renderValue(v, ctx));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValue(v, ctx)]));
  return value;
}

/** Every string inside a JSON value, with its dotted path (for checking the templates in a sub-workflow's `input`). */
export function templateStrings(value: unknown, path: string): Array<{ path: string; text: string }> {
  if (typeof value === 'string') return [{ path, text: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => templateStrings(v, `${path}.${i}`));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => templateStrings(v, `${path}.${k}`));
  return [];
}

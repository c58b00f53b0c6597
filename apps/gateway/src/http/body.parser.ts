/**
 * Request bodies: JSON everywhere, YAML too (workflow files are written in
 * YAML). Fastify hands every body to `parseBody` as bytes (see
 * configure-http.ts), so the media-type rules and the error codes live here,
 * in one function that unit-tests without a server.
 */
import { createRequire } from 'node:module';
import { MuseError } from '@muse/contracts';

const require = createRequire(import.meta.url);
/** The `yaml` package, loaded the first time YAML is read (a YAML request body): a service that reads none does without its 72 modules, ~0.8 MB of heap. */
const yaml = (): typeof import('yaml') => require('yaml') as typeof import('yaml');

export const JSON_MEDIA_TYPES = ['application/json'] as const;
export const YAML_MEDIA_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'] as const;
/** What every route with a body accepts, as listed in the OpenAPI document. */
export const BODY_MEDIA_TYPES = [...JSON_MEDIA_TYPES, ...YAML_MEDIA_TYPES] as const;

export type BodyFormat = 'json' | 'yaml';

/** `application/json; charset=utf-8` -> `application/json`; undefined when absent. */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return type === '' ? undefined : type;
}

/** Which parser a media type gets, or null when it is not accepted. `+json` / `+yaml` suffixes count. */
export function bodyFormatOf(mediaType: string | undefined): BodyFormat | null {
  if (mediaType === undefined) return null;
  if ((JSON_MEDIA_TYPES as readonly string[]).includes(mediaType) || mediaType.endsWith('+json')) return 'json';
  if ((YAML_MEDIA_TYPES as readonly string[]).includes(mediaType) || mediaType.endsWith('+yaml')) return 'yaml';
  return null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses a request body. An empty body is `undefined` (the route decides
 * whether it needs one). Throws a MuseError: 415 for a media type we do not
 * read, 400 for bytes that are not UTF-8 JSON/YAML, 400 for a `__proto__` key.
 */
export function parseBody(contentType: string | undefined, raw: Uint8Array, limits: ShapeLimits = DEFAULT_SHAPE_LIMITS): unknown {
  const mediaType = mediaTypeOf(contentType);
  const format = bodyFormatOf(mediaType);
  if (format === null) {
    throw new MuseError('MUSE_ERR_REQUEST_MEDIA_TYPE', `Unsupported Content-Type "${mediaType ?? '(none)'}"; send ${BODY_MEDIA_TYPES.join(', ')}`, {
      details: { contentType: mediaType ?? null, accepted: BODY_MEDIA_TYPES },
    });
  }
  const code = format === 'json' ? 'MUSE_ERR_REQUEST_MALFORMED_JSON' : 'MUSE_ERR_REQUEST_MALFORMED_YAML';
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch (cause) {
    throw new MuseError(code, 'The request body is not valid UTF-8', { cause });
  }
  if (text.trim() === '') return undefined;
  const value = format === 'json' ? parseJson(text) : parseYaml(text);
  rejectProtoKeys(value);
  checkShape(value, limits);
  return value;
}

/** How deep and how wide a body may be: bounds the work every later walk over it (validation, hashing) can take. */
export interface ShapeLimits {
  /** Deepest nesting of objects and arrays (the top level is depth 1). @default 32 */
  maxDepth: number;
  /** Longest array. @default 10_000 */
  maxArrayLength: number;
}

export const DEFAULT_SHAPE_LIMITS: ShapeLimits = { maxDepth: 32, maxArrayLength: 10_000 };

/** Throws MUSE_ERR_REQUEST_TOO_COMPLEX (400) for a body deeper or with longer arrays than `limits`. Iterative: a deep body cannot overflow the stack. */
export function checkShape(value: unknown, limits: ShapeLimits): void {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.maxDepth) {
      throw new MuseError('MUSE_ERR_REQUEST_TOO_COMPLEX', `The request body is nested deeper than ${limits.maxDepth} levels`, { details: { maxDepth: limits.maxDepth } });
    }
    if (Array.isArray(v) && v.length > limits.maxArrayLength) {
      throw new MuseError('MUSE_ERR_REQUEST_TOO_COMPLEX', `The request body has an array longer than ${limits.maxArrayLength}`, {
        details: { maxArrayLength: limits.maxArrayLength },
      });
    }
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new MuseError('MUSE_ERR_REQUEST_MALFORMED_JSON', `The request body is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

function parseYaml(text: string): unknown {
  // One document, core schema (no custom tags), duplicate keys refused, and
  // the default cap of 100 aliases against "billion laughs" expansion.
  const doc = yaml().parseDocument(text, { schema: 'core', uniqueKeys: true, prettyErrors: true });
  const first = doc.errors[0];
  if (first) {
    const [line, col] = first.linePos?.[0] ? [first.linePos[0].line, first.linePos[0].col] : [undefined, undefined];
    throw new MuseError('MUSE_ERR_REQUEST_MALFORMED_YAML', `The request body is not valid YAML: ${first.message.split('\n')[0]!.replace(/:\s*$/, '')}`, {
      details: { line, col, code: first.code },
    });
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    throw new MuseError('MUSE_ERR_REQUEST_MALFORMED_YAML', `The request body is not valid YAML: ${(cause as Error).message}`, { cause });
  }
}

/**
 * JSON.parse makes `"__proto__"` an own key; a later spread or merge would
 * turn it into a prototype. Fastify's own parser refuses such bodies too.
 */
function rejectProtoKeys(value: unknown): void {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Object.prototype.hasOwnProperty.call(v, '__proto__')) {
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'The request body has a forbidden "__proto__" key');
    }
    for (const child of Object.values(v)) stack.push(child);
  }
}

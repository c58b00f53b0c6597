/**
 * The `Range` request header, for one range of bytes (RFC 9110 §14).
 * Multiple ranges are answered with the whole blob, which the RFC allows
 * and saves us multipart/byteranges; so is a header we cannot parse.
 */

export type ByteRange =
  /** Serve the whole blob with 200. */
  | { kind: 'all' }
  /** Serve bytes `start..end`, both inclusive, with 206. */
  | { kind: 'range'; start: number; end: number }
  /** Nothing of the blob matches: 416 with `Content-Range: bytes *\/<size>`. */
  | { kind: 'unsatisfiable' };

const SPEC = /^(\d*)-(\d*)$/;

export function parseByteRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return { kind: 'all' };
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'all' };
  const set = header.slice(eq + 1).trim();
  if (set.includes(',')) return { kind: 'all' };
  const m = SPEC.exec(set.replace(/\s+/g, ''));
  if (!m) return { kind: 'all' };
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return { kind: 'all' };

  if (first === '') {
    // Suffix range: the last N bytes.
    const n = toInt(last);
    if (n === undefined) return { kind: 'all' };
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = toInt(first);
  if (start === undefined) return { kind: 'all' };
  let end = size - 1;
  if (last !== '') {
    const e = toInt(last);
    if (e === undefined || e < start) return { kind: 'all' }; // syntactically invalid: ignored
    end = Math.min(e, size - 1);
  }
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}

function toInt(digits: string): number | undefined {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson(data: Uint8Array): unknown {
  return JSON.parse(decoder.decode(data));
}

/**
 * Items as messages of JSON arrays, in order: each message under `maxBytes` (unless one item alone is larger) and at
 * most `maxItems` long; a message of one item is that item's bare object, so a stream written one item a message
 * reads the same (`decodeJsonBatch`). Each item is encoded once. `count`: how many items a message holds.
 */
export function encodeJsonBatches<T>(items: readonly T[], maxBytes: number, maxItems = Infinity): Array<{ data: Uint8Array; first: T; count: number }> {
  const out: Array<{ data: Uint8Array; first: T; count: number }> = [];
  let group: Uint8Array[] = [];
  let groupItems: T[] = [];
  let size = 0;
  const flush = (): void => {
    if (groupItems.length === 0) return;
    out.push({ data: groupItems.length === 1 ? group[0]! : joinArray(group, size), first: groupItems[0]!, count: groupItems.length });
    group = [];
    groupItems = [];
    size = 0;
  };
  for (const item of items) {
    const bytes = encodeJson(item);
    // Each member takes its bytes and one before it (`[` or `,`); the array one more (`]`).
    if (groupItems.length > 0 && (size + bytes.length + 2 > maxBytes || groupItems.length >= maxItems)) flush();
    group.push(bytes);
    groupItems.push(item);
    size += bytes.length + 1;
  }
  flush();
  return out;
}

/** The items of one message `encodeJsonBatches` made: an array of them, or one. */
export function decodeJsonBatch(data: Uint8Array): unknown[] {
  const value = decodeJson(data);
  return Array.isArray(value) ? value : [value];
}

const OPEN = 0x5b; // [
const COMMA = 0x2c;
const CLOSE = 0x5d; // ]

/** `[a,b,c]` from the encoded members, without encoding them again. */
function joinArray(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size + 1);
  let at = 0;
  out[at++] = OPEN;
  parts.forEach((p, i) => {
    if (i > 0) out[at++] = COMMA;
    out.set(p, at);
    at += p.length;
  });
  out[at++] = CLOSE;
  return out;
}

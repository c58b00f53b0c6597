/**
 * How run events sit in the run log: one stream message per append, not per
 * event. The events one command produces (a report's `step.started`,
 * `step.completed`, the next `step.queued`, …) go out as one JSON array in one
 * acknowledged publish, so the append costs one round trip however many
 * events it holds, and they are stored together or not at all. A lone event
 * is stored as the bare object, as older logs hold every event.
 */
import { RunEventSchema, type RunEvent } from '@muse/contracts';
import { decodeJson, encodeJson } from './codec.js';

/** Bytes of events per message, well under NATS's default 1 MiB payload limit. */
export const RUN_LOG_CHUNK_BYTES = 256 * 1024;

/** The events of one append as messages: in order, each under `maxBytes` unless one event alone is larger. */
export function encodeRunEvents(events: readonly RunEvent[], maxBytes = RUN_LOG_CHUNK_BYTES): Array<{ data: Uint8Array; first: RunEvent }> {
  const out: Array<{ data: Uint8Array; first: RunEvent }> = [];
  let group: Uint8Array[] = [];
  let groupEvents: RunEvent[] = [];
  let size = 0;
  const flush = (): void => {
    if (groupEvents.length === 0) return;
    out.push({ data: groupEvents.length === 1 ? group[0]! : joinArray(group, size), first: groupEvents[0]! });
    group = [];
    groupEvents = [];
    size = 0;
  };
  for (const ev of events) {
    const bytes = encodeJson(ev);
    // Each member takes its bytes and one before it (`[` or `,`); the array one more (`]`).
    if (groupEvents.length > 0 && size + bytes.length + 2 > maxBytes) flush();
    group.push(bytes);
    groupEvents.push(ev);
    size += bytes.length + 1;
  }
  flush();
  return out;
}

/** The events in one run-log message: an array of them, or one. */
export function decodeRunEvents(data: Uint8Array): RunEvent[] {
  const value = decodeJson(data);
  return Array.isArray(value) ? value.map((v) => RunEventSchema.parse(v)) : [RunEventSchema.parse(value)];
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

/**
 * How run events sit in the run log: one stream message per append, not per
 * event. The events one command produces (a report's `step.started`,
 * `step.completed`, the next `step.queued`, …) go out as one JSON array in one
 * acknowledged publish, so the append costs one round trip however many
 * events it holds, and they are stored together or not at all. A lone event
 * is stored as the bare object, as older logs hold every event.
 */
import { RunEventSchema, type RunEvent } from '@muse/contracts';
import { decodeJsonBatch, encodeJsonBatches } from './codec.js';

/** Bytes of events per message, well under NATS's default 1 MiB payload limit. */
export const RUN_LOG_CHUNK_BYTES = 256 * 1024;

/** The events of one append as messages: in order, each under `maxBytes` unless one event alone is larger. */
export function encodeRunEvents(events: readonly RunEvent[], maxBytes = RUN_LOG_CHUNK_BYTES): Array<{ data: Uint8Array; first: RunEvent; count: number }> {
  return encodeJsonBatches(events, maxBytes);
}

/** The events in one run-log message: an array of them, or one. */
export function decodeRunEvents(data: Uint8Array): RunEvent[] {
  return decodeJsonBatch(data).map((v) => RunEventSchema.parse(v));
}

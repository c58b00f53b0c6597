/** Raised when an append finds the run's log moved on: another writer got there first. */
export class WrongLastSequenceError extends Error {
  constructor(runId: string, expected: number, opts?: { cause?: unknown }) {
    super(`run ${runId}: log is past stream sequence ${expected}`, opts);
    this.name = 'WrongLastSequenceError';
  }
}

export function isWrongLastSequence(err: unknown): err is WrongLastSequenceError {
  return err instanceof WrongLastSequenceError;
}

/**
 * Raised before anything is appended when one event alone is larger than a message of the run log may be (the NATS
 * server's `max_payload`, less room for headers): no split can store it, and retrying never will.
 */
export class EventTooLargeError extends Error {
  constructor(
    readonly runId: string,
    /** The event too large: its type and id. */
    readonly event: { type: string; id: string },
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`run ${runId}: event ${event.type} is ${bytes} bytes, over the ${limitBytes}-byte limit of one run-log message`);
    this.name = 'EventTooLargeError';
  }
}

/** Raised before publishing when a command is larger than one message of the command stream may be (as for events). */
export class CommandTooLargeError extends Error {
  constructor(
    readonly kind: string,
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`a ${kind} command of ${bytes} bytes is over the ${limitBytes}-byte limit of one command-stream message`);
    this.name = 'CommandTooLargeError';
  }
}

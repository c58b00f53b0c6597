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
 * Raised before anything is sent when a message would be larger than the bus may send (the NATS server's
 * `max_payload`, less room for headers): no split can store it, and retrying never will.
 */
export abstract class MessageTooLargeError extends Error {
  constructor(
    message: string,
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`${message} is ${bytes} bytes, over the ${limitBytes}-byte limit of one message`);
    this.name = new.target.name;
  }
}

/** One event of an append is too large for a message of the run log; nothing of the append was stored. */
export class EventTooLargeError extends MessageTooLargeError {
  constructor(
    readonly runId: string,
    /** The event too large: its type and id. */
    readonly event: { type: string; id: string },
    bytes: number,
    limitBytes: number,
  ) {
    super(`run ${runId}: event ${event.type}`, bytes, limitBytes);
  }
}

/** A command is too large for a message of the command stream, with room left for the event it becomes. */
export class CommandTooLargeError extends MessageTooLargeError {
  constructor(
    readonly kind: string,
    bytes: number,
    limitBytes: number,
  ) {
    super(`a ${kind} command`, bytes, limitBytes);
  }
}

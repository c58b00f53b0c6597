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

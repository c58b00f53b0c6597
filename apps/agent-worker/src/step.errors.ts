/**
 * Errors of step execution that are not step outcomes. (Outcomes are
 * MuseErrors from the catalogue, reported to the coordinator.)
 */

export const STEP_HANDED_BACK = 'muse:step-handed-back' as const;

/**
 * The worker is shutting down past its grace period and gives the step back
 * instead of finishing it: nothing is reported, the BullMQ lock lapses, the
 * stalled-job check fails the job and the coordinator queues the next attempt.
 */
export class StepHandedBackError extends Error {
  readonly code = STEP_HANDED_BACK;
  constructor() {
    super('step handed back: the worker is shutting down');
    this.name = 'StepHandedBackError';
  }
}

export function isStepHandedBack(err: unknown): err is StepHandedBackError {
  return err instanceof StepHandedBackError;
}

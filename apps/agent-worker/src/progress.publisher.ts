/**
 * Live progress of agent steps: model token deltas, batched and published on
 * the run's core NATS progress subject (ephemeral, at-most-once, not in the
 * run log), which the gateway forwards to WebSocket subscribers.
 *
 * - Throttled: at most one message per `intervalMs` per attempt (the first
 *   delta goes out at once), plus one at the end.
 * - Scrubbed: the text passes the secret scrubber like every other output.
 *   A secret can arrive split across deltas, so the scrubber runs on the
 *   whole text so far and the last `holdBackChars` characters are kept back
 *   until the attempt ends (a secret longer than that could leak in part:
 *   secret values are expected to be shorter).
 */
import type { MuseNames, StepJob, StepProgress } from '@muse/contracts';

/** Characters of the streamed text kept back until the end, so a secret split across deltas is scrubbed whole. @default 256 */
export const HOLD_BACK_CHARS = 256;

export interface ProgressStream {
  delta(text: string): void;
  /** Sends what is left; call once when the attempt ends (success or not). */
  finish(): void;
}

export class ProgressPublisher {
  constructor(
    private readonly bus: { publish(subject: string, payload: unknown): void },
    private readonly names: Pick<MuseNames, 'stepProgressSubject'>,
    /** Shortest gap between two messages of one attempt, in ms. */
    private readonly intervalMs: number,
    private readonly scrubber?: { scrub(text: string): string },
    private readonly holdBackChars = HOLD_BACK_CHARS,
  ) {}

  start(job: Pick<StepJob, 'project' | 'runId' | 'stepId' | 'attempt'>): ProgressStream {
    const subject = this.names.stepProgressSubject(job.runId);
    let raw = '';
    let sent = 0; // characters of the scrubbed text already published
    let chunk = 0;
    let lastAt = 0;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const flush = (final: boolean): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      lastAt = Date.now();
      const safe = this.scrubber ? this.scrubber.scrub(raw) : raw;
      const upTo = final ? safe.length : Math.max(sent, safe.length - this.holdBackChars);
      if (upTo <= sent) return;
      const progress: StepProgress = { project: job.project, runId: job.runId, stepId: job.stepId, attempt: job.attempt, chunk: ++chunk, text: safe.slice(sent, upTo) };
      sent = upTo;
      try {
        this.bus.publish(subject, progress);
      } catch {
        // Best effort: progress is a view, the step's output is the record.
      }
    };
    return {
      delta: (text) => {
        if (done || text.length === 0) return;
        raw += text;
        const wait = lastAt + this.intervalMs - Date.now();
        if (wait <= 0) flush(false);
        else timer ??= setTimeout(() => flush(false), wait);
      },
      finish: () => {
        if (done) return;
        done = true;
        flush(true);
      },
    };
  }
}

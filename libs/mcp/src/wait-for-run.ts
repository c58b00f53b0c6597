/**
 * `wait_for_run`: follow a run over the gateway's event stream until it
 * settles or the timeout passes, reporting progress as its steps finish.
 *
 * The run view (`GET /v1/runs/{id}`) is the record and the stream only says
 * when to read it again: the view's `seq` is where the stream starts, so no
 * event falls between the two; and because the read model can trail the log
 * by a moment, a read is repeated until it has caught up with the newest
 * event seen.
 */
import { isTerminalRunStatus, isTerminalStepStatus, type RunView } from '@muse/contracts';
import { MuseApiError, type MuseApiClient } from './muse-api.client.js';
import { RunStream } from './run-stream.js';

export interface RunProgress {
  /** Steps in a terminal status (succeeded, failed, skipped, cancelled). */
  progress: number;
  /** Steps of the run so far (compensations and fan-outs can add some). */
  total: number;
  message: string;
}

export interface WaitForRunOptions {
  runId: string;
  /** How long to wait, in ms. */
  timeoutMs: number;
  /** Return as soon as the run is `waiting` (an approval gate waits for a decision, or the run is paused). */
  returnWhenWaiting: boolean;
  signal?: AbortSignal;
  /** Called with a larger `progress` each time more steps have finished (and once at the start). */
  onProgress?: (p: RunProgress) => Promise<void>;
}

export interface WaitForRunResult {
  run: RunView;
  /** The run reached a terminal status. */
  finished: boolean;
  timedOut: boolean;
}

/**
 * Re-reads while the read model trails an event already seen on the stream:
 * the pause doubles from `firstMs` to `maxStepMs`, for at most `maxMs` in all
 * (each read counts against the key's rate limit).
 */
const CATCH_UP = { firstMs: 50, maxStepMs: 400, maxMs: 3_000 } as const;

export const finishedSteps = (run: RunView): number => run.steps.filter((s) => isTerminalStepStatus(s.status)).length;

export async function waitForRun(api: MuseApiClient, opts: WaitForRunOptions): Promise<WaitForRunResult> {
  const path = `/v1/runs/${encodeURIComponent(opts.runId)}`;
  const read = () => api.request<RunView>('GET', path);
  const settled = (v: RunView) => isTerminalRunStatus(v.status) || (opts.returnWhenWaiting && v.status === 'waiting');
  const result = (v: RunView, timedOut: boolean): WaitForRunResult => ({ run: v, finished: isTerminalRunStatus(v.status), timedOut });

  let view = await read();
  let reported = -1;
  const report = async (before: RunView | undefined, now: RunView): Promise<void> => {
    const done = finishedSteps(now);
    if (!opts.onProgress || done <= reported) return;
    reported = done;
    const was = new Map(before?.steps.map((s) => [s.id, s.status]) ?? []);
    const changed = now.steps.filter((s) => isTerminalStepStatus(s.status) && was.get(s.id) !== s.status).map((s) => `${s.id} ${s.status}`);
    const what = before === undefined ? `run ${now.status}` : changed.join(', ') || `run ${now.status}`;
    await opts.onProgress({ progress: done, total: now.steps.length, message: `${what} (${done}/${now.steps.length} steps finished)` });
  };
  await report(undefined, view);
  if (settled(view)) return result(view, false);

  const stream = new RunStream(api);
  return new Promise<WaitForRunResult>((resolve, reject) => {
    let targetSeq = view.seq;
    let refreshing = false;
    let again = false;
    let over = false;
    const finish = (outcome: { ok: WaitForRunResult } | { err: unknown }) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      stream.close();
      if ('ok' in outcome) resolve(outcome.ok);
      else reject(outcome.err);
    };
    const refresh = async (): Promise<void> => {
      if (refreshing) {
        again = true;
        return;
      }
      refreshing = true;
      try {
        do {
          again = false;
          let next = await read();
          for (let waited = 0, step: number = CATCH_UP.firstMs; next.seq < targetSeq && waited < CATCH_UP.maxMs; waited += step, step = Math.min(step * 2, CATCH_UP.maxStepMs)) {
            await new Promise((r) => setTimeout(r, step));
            next = await read();
          }
          if (over) return;
          const before = view;
          if (next.seq >= view.seq) view = next;
          await report(before, view);
          if (settled(view)) return finish({ ok: result(view, false) });
        } while (again && !over);
      } catch (err) {
        finish({ err });
      } finally {
        refreshing = false;
      }
    };
    const timer = setTimeout(() => finish({ ok: result(view, true) }), opts.timeoutMs);
    const onAbort = () => finish({ err: new MuseApiError(0, { code: 'MUSE_ERR_REQUEST_INVALID', message: 'The wait was cancelled by the client', retryable: false }) });
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    stream
      .subscribe(opts.runId, view.seq + 1, {
        onEvent: (event) => {
          targetSeq = Math.max(targetSeq, event.seq);
          void refresh();
        },
        onError: (error) => finish({ err: new MuseApiError(0, error) }),
      })
      .catch((err: unknown) => finish({ err: new MuseApiError(0, { code: 'MUSE_ERR_UNAVAILABLE', message: (err as Error).message, retryable: true }) }));
  });
}

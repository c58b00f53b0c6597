/**
 * `muse top`: a terminal dashboard in the spirit of `top`, redrawn every
 * second from the observability service's snapshot (`GET /v1/snapshot`, the
 * same document the web dashboard starts from): runs and steps, the queue of
 * every agent role, every live agent, the recent runs and events. `q` or
 * Ctrl-C quits; the terminal is left as it was (alternate screen, cursor).
 *
 * The drawing is a plain function of the snapshot and the terminal size
 * (`renderTop`), so it is tested without a terminal; the loop around it only
 * fetches, writes and reads keys.
 */
import { z } from 'zod';

/** The part of the snapshot `muse top` draws; the rest is ignored. */
const TopSnapshotSchema = z.object({
  generatedAt: z.string(),
  namespace: z.string(),
  runs: z.object({
    byStatus: z.record(z.string(), z.number()),
    active: z.number(),
    recent: z.array(
      z.object({
        id: z.string(),
        workflow: z.object({ name: z.string(), version: z.number() }).nullable(),
        status: z.string(),
        updatedAt: z.string(),
        steps: z.array(z.object({ id: z.string(), status: z.string() })),
      }),
    ),
  }),
  events: z.array(
    z.object({
      runId: z.string(),
      seq: z.number(),
      type: z.string(),
      at: z.string(),
      stepId: z.string().optional(),
      attempt: z.number().optional(),
      role: z.string().optional(),
      agentId: z.string().optional(),
      errorCode: z.string().optional(),
      final: z.boolean().optional(),
    }),
  ),
  agents: z.array(
    z.object({
      agentId: z.string(),
      roles: z.array(z.string()),
      inFlight: z.number(),
      load: z.number(),
      completed: z.number(),
      failed: z.number(),
      lastSeenAt: z.string(),
    }),
  ),
  queues: z.array(z.object({ role: z.string(), waiting: z.number(), active: z.number(), delayed: z.number() })),
  totals: z.object({ since: z.string(), stepsCompleted: z.number(), stepsFailed: z.number(), stepsRetried: z.number(), eventsSeen: z.number() }),
});
export type TopSnapshot = z.infer<typeof TopSnapshotSchema>;

export interface TopView {
  /** Terminal columns and rows. */
  width: number;
  height: number;
  url: string;
  /** Why the last fetch failed; the previous snapshot (if any) is still drawn. */
  error?: string;
}

/** Recent runs listed. */
const RUNS_SHOWN = 5;

/** One screen, as lines exactly `view.width` columns wide (at most `view.height` lines). */
export function renderTop(snap: TopSnapshot | undefined, view: TopView): string[] {
  const width = Math.max(40, view.width);
  const inner = width - 4;
  const row = (text: string) => `│ ${fit(text, inner)} │`;
  const rule = (title: string) => `├${fit(`─ ${title} `, width - 2, '─')}┤`;
  const clock = snap ? snap.generatedAt.slice(11, 19) : '--:--:--';
  const lines: string[] = [`┌${fit(`─ Muse top ─ ${snap?.namespace ?? '?'} ─ ${view.url} ─ ${clock} UTC `, width - 2, '─')}┐`];
  if (view.error) lines.push(row(`! ${view.error}`));
  if (!snap) {
    lines.push(row('waiting for the first snapshot...'));
    lines.push(`└${'─'.repeat(width - 2)}┘`, fit(' q quit', width));
    return lines;
  }

  const b = snap.runs.byStatus;
  const t = snap.totals;
  lines.push(rule('Queue Status'));
  lines.push(row(`Runs: ${snap.runs.active} active · ${b.succeeded ?? 0} succeeded · ${b.failed ?? 0} failed · ${b.cancelled ?? 0} cancelled`));
  lines.push(row(`Steps: ${t.stepsCompleted} completed · ${t.stepsFailed} failed · ${t.stepsRetried} retried · ${t.eventsSeen} events (since ${t.since.slice(11, 19)})`));
  lines.push(row(`${'role'.padEnd(16)}${'waiting'.padStart(9)}${'active'.padStart(9)}${'delayed'.padStart(9)}`));
  for (const q of snap.queues) lines.push(row(`${q.role.padEnd(16)}${String(q.waiting).padStart(9)}${String(q.active).padStart(9)}${String(q.delayed).padStart(9)}`));

  lines.push(rule(`Agent Status (${snap.agents.length} alive)`));
  if (snap.agents.length === 0) lines.push(row('no live agents'));
  for (const a of snap.agents) {
    const pct = Math.min(100, Math.round(a.load * 100));
    const state = a.inFlight === 0 ? 'IDLE' : pct >= 100 ? 'FULL' : 'ACTIVE';
    lines.push(row(`${a.agentId.padEnd(18)} ${state.padEnd(6)} │ ${a.roles.join(',').padEnd(28)} in flight ${a.inFlight} · load ${String(pct).padStart(3)}% · done ${a.completed} · failed ${a.failed}`));
  }

  lines.push(rule('Runs'));
  if (snap.runs.recent.length === 0) lines.push(row('no runs yet'));
  for (const r of snap.runs.recent.slice(0, RUNS_SHOWN)) {
    const done = r.steps.filter((s) => s.status === 'succeeded').length;
    const running = r.steps.filter((s) => s.status === 'running').map((s) => s.id);
    const wf = r.workflow ? `${r.workflow.name} v${r.workflow.version}` : '?';
    lines.push(row(`${r.status.toUpperCase().padEnd(9)} ${r.id.padEnd(30)} ${wf.padEnd(24)} ${done}/${r.steps.length} steps${running.length ? ` · running ${running.join(',')}` : ''}`));
  }

  // The events fill what is left of the screen (the border and the key line take two rows).
  const room = Math.max(3, view.height - lines.length - 3);
  lines.push(rule(`Recent Events (last ${Math.min(room, snap.events.length)})`));
  if (snap.events.length === 0) lines.push(row('no events yet'));
  for (const e of snap.events.slice(0, room)) lines.push(row(eventLine(e)));
  lines.push(`└${'─'.repeat(width - 2)}┘`);
  lines.push(fit(' q quit · refreshes every second', width));
  return lines.slice(0, Math.max(1, view.height));
}

function eventLine(e: TopSnapshot['events'][number]): string {
  const parts = [`[${e.at.slice(11, 19)}]`, e.type.padEnd(15), e.runId];
  if (e.stepId) parts.push(`${e.stepId}${e.attempt ? `#${e.attempt}` : ''}`);
  if (e.role) parts.push(`role=${e.role}`);
  if (e.agentId) parts.push(`agent=${e.agentId}`);
  if (e.errorCode) parts.push(`${e.errorCode}${e.final === false ? ' (will retry)' : ''}`);
  return parts.join(' ');
}

/** Pads or cuts `text` to exactly `n` columns (control characters removed: snapshot strings are user data). */
function fit(text: string, n: number, pad = ' '): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  const chars = [...clean];
  if (chars.length > n) return `${chars.slice(0, n - 1).join('')}…`;
  return clean + pad.repeat(n - chars.length);
}

export async function fetchSnapshot(url: string, timeoutMs: number): Promise<TopSnapshot> {
  const res = await fetch(`${url.replace(/\/$/, '')}/v1/snapshot`, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET /v1/snapshot answered ${res.status}`);
  return TopSnapshotSchema.parse(await res.json());
}

export interface TopOptions {
  /** The observability service's base URL. */
  url: string;
  /** Redraw period, in ms. @default 1_000 */
  intervalMs: number;
  /** Print one screen (no alternate screen, no keys) and exit: for pipes and scripts. */
  once: boolean;
}

const ESC = '\u001b[';

/** Runs until q, Ctrl-C, SIGTERM or SIGHUP; returns the exit code. */
export async function top(opts: TopOptions, out: NodeJS.WriteStream = process.stdout, input: NodeJS.ReadStream = process.stdin): Promise<number> {
  const view = (): TopView => ({ width: out.columns ?? 100, height: out.rows ?? 40, url: opts.url });
  if (opts.once || !out.isTTY) {
    try {
      out.write(`${renderTop(await fetchSnapshot(opts.url, 5_000), view()).join('\n')}\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`muse top: ${(err as Error).message} (${opts.url})\n`);
      return 1;
    }
  }

  let last: TopSnapshot | undefined;
  let error: string | undefined;
  const draw = () => {
    const lines = renderTop(last, { ...view(), ...(error ? { error } : {}) });
    // Home, each line then clear-to-end-of-line, then clear below: no flicker, no leftovers after a resize.
    out.write(`${ESC}H${lines.map((l) => `${l}${ESC}K`).join('\r\n')}${ESC}J`);
  };
  const refresh = async () => {
    try {
      last = await fetchSnapshot(opts.url, Math.max(500, opts.intervalMs * 2));
      error = undefined;
    } catch (err) {
      error = `${(err as Error).message} (${opts.url}); retrying`;
    }
    draw();
  };

  out.write(`${ESC}?1049h${ESC}?25l${ESC}2J`);
  const wasRaw = input.isTTY ? input.isRaw : false;
  if (input.isTTY) input.setRawMode(true);
  input.resume();
  out.on('resize', draw);

  return new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const tick = async () => {
      await refresh();
      if (!stopped) timer = setTimeout(() => void tick(), opts.intervalMs);
    };
    const quit = () => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      out.off('resize', draw);
      input.off('data', onKey);
      if (input.isTTY) input.setRawMode(wasRaw);
      input.pause();
      out.write(`${ESC}?25h${ESC}?1049l`);
      for (const sig of SIGNALS) process.off(sig, quit);
      resolve(0);
    };
    const onKey = (data: Buffer) => {
      const key = data.toString('utf8');
      if (key === 'q' || key === 'Q' || key === '\u0003') quit();
      else if (key === 'r') void refresh();
    };
    input.on('data', onKey);
    for (const sig of SIGNALS) process.on(sig, quit);
    void tick();
  });
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

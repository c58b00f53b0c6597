import type { RunEvent, RunView } from '@muse/contracts';

const color = (code: number) => (s: string) => (process.stdout.isTTY ? `\u001b[${code}m${s}\u001b[0m` : s);
export const green = color(32);
export const red = color(31);
export const yellow = color(33);
export const dim = color(2);
export const bold = color(1);

/** One line per event, for `--watch` and the launcher. */
export function formatEvent(ev: RunEvent): string {
  const t = dim(ev.at.slice(11, 23));
  const seq = dim(`#${String(ev.seq).padStart(3)}`);
  switch (ev.type) {
    case 'run.created':
      return `${t} ${seq} run created      ${ev.data.workflow.name} v${ev.data.workflow.version}`;
    case 'run.started':
      return `${t} ${seq} run started`;
    case 'step.queued':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} queued    (attempt ${ev.data.attempt}, role ${ev.data.role}${ev.data.delayMs ? `, after ${ev.data.delayMs} ms` : ''})`;
    case 'step.expanded':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} forEach   ${ev.data.items.length} elements`;
    case 'step.skipped':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} ${dim('skipped')}   ${ev.data.reason}`;
    case 'step.started':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} ${yellow('running')}   on ${ev.data.agentId}`;
    case 'step.completed':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} ${green('succeeded')} on ${ev.data.agentId}${ev.data.artifacts.length ? dim(` (${ev.data.artifacts.map((a) => a.name).join(', ')})`) : ''}`;
    case 'step.failed':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} ${red(ev.data.final ? 'failed' : 'failed, will retry')} ${ev.data.error.code}: ${ev.data.error.message}`;
    case 'concurrency.waiting':
      return `${t} ${seq} ${(ev.data.stepId ?? 'run').padEnd(16)} ${yellow('waiting')}   for a slot of key "${ev.data.key}" (limit ${ev.data.limit})`;
    case 'concurrency.admitted':
      return `${t} ${seq} ${(ev.data.stepId ?? 'run').padEnd(16)} admitted  (holds a concurrency slot)`;
    case 'budget.waiting':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} ${yellow('waiting')}   for budget: ${ev.data.error.message}`;
    case 'budget.raised':
      return `${t} ${seq} budget raised    ${[ev.data.addTokens ? `+${ev.data.addTokens} tokens` : '', ev.data.addCost ? `+$${ev.data.addCost}` : ''].filter(Boolean).join(', ')}`;
    case 'lease.waiting':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} ${yellow('waiting')}   for leases ${ev.data.locks.join(', ')}`;
    case 'lease.granted':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} leased    (token ${ev.data.token})`;
    case 'step.reused':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} ${green('reused')}    from ${ev.data.fromRun}`;
    case 'step.waiting':
      return `${t} ${seq} ${ev.data.stepId.padEnd(16)} ${yellow('waiting')}   for approval${ev.data.timeoutMs !== undefined ? ` (${ev.data.onTimeout} after ${ev.data.timeoutMs} ms)` : ''}`;
    case 'run.paused':
      return `${t} ${seq} ${yellow('run paused')}${ev.data.reason ? ` (${ev.data.reason})` : ''}`;
    case 'run.resumed':
      return `${t} ${seq} run resumed`;
    case 'run.retried':
      return `${t} ${seq} run retried   from ${ev.data.steps.join(', ')}`;
    case 'run.compensating':
      return `${t} ${seq} ${yellow('compensating')}  ${ev.data.order.join(', ')} (${ev.data.error.code})`;
    case 'run.completed':
      return `${t} ${seq} ${green('run succeeded')}`;
    case 'run.failed':
      return `${t} ${seq} ${red('run failed')}     ${ev.data.error.code}: ${ev.data.error.message}`;
    case 'run.cancelled':
      return `${t} ${seq} ${yellow('run cancelled')}${ev.data.reason ? ` (${ev.data.reason})` : ''}`;
    default:
      // An event this CLI does not know how to show in its own words: its type and data, as they are.
      return `${t} ${seq} ${(ev as { type: string }).type} ${dim(JSON.stringify((ev as { data: unknown }).data))}`;
  }
}

export function formatRun(run: RunView): string {
  const status = run.status === 'succeeded' ? green(run.status) : run.status === 'failed' ? red(run.status) : yellow(run.status);
  const lines = [
    `${bold(run.id)}  ${run.workflow.name} v${run.workflow.version}  ${status}`,
    `created ${run.createdAt}  updated ${run.updatedAt}`,
    ...run.steps.map((s) => `  ${s.id.padEnd(16)} ${s.status.padEnd(10)} attempts ${s.attempts}${s.agent ? `  on ${s.agent}` : ''}${s.error ? red(`  ${s.error.code}: ${s.error.message}`) : ''}`),
  ];
  if (run.output !== undefined) lines.push(`output: ${typeof run.output === 'string' ? run.output : JSON.stringify(run.output)}`);
  if (run.error) lines.push(red(`error: ${run.error.code}: ${run.error.message}`));
  return lines.join('\n');
}

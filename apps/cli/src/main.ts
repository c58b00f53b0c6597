#!/usr/bin/env node
/** The `muse` command. */
import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { TERMINAL_RUN_STATUSES, type RunStatus } from '@muse/contracts';
import { GatewayClient, GatewayError } from './gateway.client.js';
import { formatEvent, formatRun, red } from './format.js';
import { up } from './up.command.js';

const program = new Command('muse')
  .description('Muse: durable, observable workflows of AI agents')
  .option('-g, --gateway <url>', 'gateway URL (env MUSE_GATEWAY_URL)', process.env.MUSE_GATEWAY_URL ?? 'http://127.0.0.1:3000')
  .option('--json', 'print JSON instead of text');

const client = () => new GatewayClient(program.opts<{ gateway: string }>().gateway.replace(/\/$/, ''));
const json = () => program.opts<{ json?: boolean }>().json === true;
const print = (value: unknown, text: () => string): void => void process.stdout.write(`${json() ? JSON.stringify(value, null, 2) : text()}\n`);

function parseInput(pair: string, acc: Record<string, unknown>): Record<string, unknown> {
  const i = pair.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`expected key=value, got "${pair}"`);
  const key = pair.slice(0, i);
  const raw = pair.slice(i + 1);
  let value: unknown = raw;
  if (/^(-?\d+(\.\d+)?|true|false|null|\{.*\}|\[.*\])$/s.test(raw)) {
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
  }
  return { ...acc, [key]: value };
}

program
  .command('up')
  .description('start NATS, Redis and every service on this machine, run the sample workflow, keep running until Ctrl-C')
  .option('--no-demo', 'do not run the sample workflow')
  .option('--exit-after-demo', 'stop everything after the sample run (exit code says whether it succeeded)')
  .option('--workers <n>', 'agent-worker processes', (v) => Number.parseInt(v, 10), 2)
  .action(async (o: { demo: boolean; exitAfterDemo?: boolean; workers: number }) => {
    process.exitCode = await up({ demo: o.demo, exitAfterDemo: o.exitAfterDemo === true, workers: o.workers });
  });

const workflows = program.command('workflows').description('register and list workflow definitions');
workflows
  .command('register <file>')
  .description('register a workflow definition (YAML or JSON); identical content keeps its version')
  .action(async (file: string) => {
    const res = await client().registerWorkflowFile(file);
    print(res, () => `registered ${res.name} v${res.version}`);
  });
workflows
  .command('list')
  .description('list registered workflows')
  .action(async () => {
    const res = await client().listWorkflows();
    print(res, () => res.items.map((w) => `${w.name.padEnd(24)} v${w.latestVersion}  ${w.description ?? ''}`).join('\n') || '(none)');
  });

program
  .command('run <workflow>')
  .description('start a run of a registered workflow, or of a definition file (registered on the way)')
  .option('-i, --input <key=value>', 'an input value (repeatable; numbers, booleans and JSON are parsed)', parseInput, {})
  .option('--version <n>', 'workflow version', (v) => Number.parseInt(v, 10))
  .option('-w, --watch', 'follow the run live; exit non-zero unless it succeeds')
  .option('--idempotency-key <key>', 'make a retried submission return the same run')
  .action(async (workflow: string, o: { input: Record<string, unknown>; version?: number; watch?: boolean; idempotencyKey?: string }) => {
    const c = client();
    let name = workflow;
    if (existsSync(workflow)) name = (await c.registerWorkflowFile(workflow)).name;
    const body: Record<string, unknown> = { workflow: name, input: o.input };
    if (o.version !== undefined) body.version = o.version;
    const run = await c.submitRun(body, o.idempotencyKey);
    if (!o.watch) return print(run, () => `${run.id} ${run.status}`);
    if (!json()) process.stdout.write(`run ${run.id}\n`);
    const final = await c.watchRun(run.id, (ev) => {
      if (!json()) process.stdout.write(`${formatEvent(ev)}\n`);
    });
    print(final, () => formatRun(final));
    if (final.status !== 'succeeded') process.exitCode = 1;
  });

program
  .command('runs')
  .description('list runs, newest first')
  .option('--status <status>', 'only runs in this status')
  .option('--workflow <name>', 'only runs of this workflow')
  .option('--limit <n>', 'how many', '20')
  .action(async (o: { status?: string; workflow?: string; limit: string }) => {
    const res = await client().listRuns({ status: o.status, workflow: o.workflow, limit: o.limit });
    print(res, () => res.items.map((r) => `${r.id}  ${r.status.padEnd(10)} ${r.workflow.name} v${r.workflow.version}  ${r.createdAt}`).join('\n') || '(none)');
  });

program
  .command('status <runId>')
  .description("show a run: status, steps, output")
  .action(async (id: string) => {
    const run = await client().getRun(id);
    print(run, () => formatRun(run));
    if ((TERMINAL_RUN_STATUSES as readonly RunStatus[]).includes(run.status) && run.status !== 'succeeded') process.exitCode = 1;
  });

program
  .command('events <runId>')
  .description("print a run's event log")
  .action(async (id: string) => {
    const res = await client().runEvents(id);
    print(res, () => res.items.map(formatEvent).join('\n'));
  });

program
  .command('cancel <runId>')
  .description('cancel a run')
  .option('--reason <text>', 'why')
  .action(async (id: string, o: { reason?: string }) => {
    const res = await client().cancelRun(id, o.reason);
    print(res, () => `${res.id} ${res.status} (cancellation requested)`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof GatewayError) {
    process.stderr.write(`${red(`error ${err.code}`)}: ${err.message}\n`);
    if (err.details) process.stderr.write(`${JSON.stringify(err.details, null, 2)}\n`);
  } else {
    process.stderr.write(`${red('error')}: ${(err as Error).message}\n`);
  }
  process.exitCode = 1;
}

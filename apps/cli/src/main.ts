#!/usr/bin/env node
/** The `muse` command. */
import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { TERMINAL_RUN_STATUSES, type RunStatus } from '@muse/contracts';
import { REPO_ROOT } from '@muse/cluster';
import { resolveCliApiKey } from './api-key-file.js';
import { GatewayClient, GatewayError } from './gateway.client.js';
import { formatPools } from './pools.format.js';
import { formatEvent, formatRun, green, red } from './format.js';
import { up } from './up.command.js';
import { top } from './top.command.js';
import { serveMcpOverStdio } from './mcp.command.js';
import { DEFAULT_AGENT_NAME, runAgent } from './agent.command.js';

const program = new Command('muse')
  .description('Muse: durable, observable workflows of AI agents')
  .option('-g, --gateway <url>', 'gateway URL (env MUSE_GATEWAY_URL)', process.env.MUSE_GATEWAY_URL ?? 'http://127.0.0.1:3000')
  .option('-k, --api-key <key>', 'API key (env MUSE_API_KEY; default: the key `muse up` wrote to $MUSE_HOME/api-key)')
  .option('--json', 'print JSON instead of text');

const client = () => {
  const o = program.opts<{ gateway: string; apiKey?: string }>();
  return new GatewayClient(o.gateway.replace(/\/$/, ''), resolveCliApiKey(o.apiKey, REPO_ROOT));
};
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
  .option('--compensate', 'run the compensations of the succeeded steps first')
  .action(async (id: string, o: { reason?: string; compensate?: boolean }) => {
    const res = await client().cancelRun(id, o.reason, o.compensate);
    print(res, () => `${res.id} ${res.status} (cancellation requested)`);
  });

for (const decision of ['approve', 'reject'] as const) {
  program
    .command(`${decision} <runId> <stepId>`)
    .description(`${decision} an approval gate that is waiting`)
    .option('--comment <text>', 'why (kept in the event log with who decided and when)')
    .action(async (id: string, stepId: string, o: { comment?: string }) => {
      const res = await client().decideApproval(id, stepId, decision, o.comment);
      print(res, () => `${res.id} ${res.stepId}: ${res.decision} (decision recorded)`);
    });
}

for (const [action, what] of [['pause', 'pause a run (no new step starts)'], ['resume', 'resume a paused run'], ['retry', 're-drive a failed run from its failed steps, reusing the outputs of the others']] as const) {
  program
    .command(`${action} <runId>`)
    .description(what)
    .option('--reason <text>', 'why')
    .action(async (id: string, o: { reason?: string }) => {
      const res = await client().controlRun(id, action, o.reason);
      print(res, () => `${res.id} ${res.status} (${action} requested)`);
    });
}

program
  .command('rerun <runId>')
  .description('start a new linked run from one step, reusing the outputs of the steps before it')
  .requiredOption('--from <stepId>', 'the step to start from')
  .action(async (id: string, o: { from: string }) => {
    const res = await client().rerunRun(id, o.from);
    print(res, () => `${res.id} ${res.status} (rerun of ${id} from ${o.from})`);
  });

program
  .command('replay <runId>')
  .description("re-execute a finished run from its recorded model calls; prints `match` or the first step whose request diverges")
  .option('--version <n>', 'replay against this version of the workflow (default: the run\'s own)', (v) => Number.parseInt(v, 10))
  .action(async (id: string, o: { version?: number }) => {
    const c = client();
    const started = await c.replayRun(id, o.version);
    const final = await c.watchRun(started.id, () => {});
    const divergence = final.replay?.divergence as { stepId?: string; expectedHash?: string; actualHash?: string; diff?: { field: string; expected: unknown; actual: unknown }[] } | undefined;
    print({ replay: started.id, of: id, status: final.status, ...(divergence ? { divergence } : {}), ...(final.error && !divergence ? { error: final.error } : {}) }, () => {
      if (divergence) {
        const diff = (divergence.diff ?? []).map((d) => `  ${d.field}: recorded ${JSON.stringify(d.expected)}, now ${JSON.stringify(d.actual)}`).join('\n');
        return `${red('diverged')} at step "${divergence.stepId}" (replay ${started.id} of ${id})\n  recorded ${divergence.expectedHash}\n  replayed ${divergence.actualHash}${diff ? `\n${diff}` : ''}`;
      }
      if (final.status === 'succeeded') return `${green('match')}: replay ${started.id} of ${id} asked every recorded request again`;
      return `${red(final.status)}: replay ${started.id} of ${id}${final.error ? ` — ${final.error.code}: ${final.error.message}` : ''}`;
    });
    if (divergence || final.status !== 'succeeded') process.exitCode = 1;
  });

program
  .command('budget <runId>')
  .description("raise a run's token and/or cost budget; steps waiting on it go on")
  .option('--add-tokens <n>', 'tokens to add', (v) => Number.parseInt(v, 10))
  .option('--add-cost <usd>', 'USD to add', (v) => Number.parseFloat(v))
  .action(async (id: string, o: { addTokens?: number; addCost?: number }) => {
    const res = await client().raiseBudget(id, o.addTokens, o.addCost);
    print(res, () => `${res.id} ${res.status} (budget raised)`);
  });

program
  .command('dead-letters')
  .description('steps that failed for good, newest first (re-drive with `muse retry <run>`)')
  .action(async () => {
    const res = await client().listDeadLetters();
    print(res, () => res.items.map((d) => `${d.at}  ${d.runId}  ${d.stepId}${d.index !== undefined ? `#${d.index}` : ''}  attempts ${d.attempts}  ${d.error.code}: ${d.error.message}`).join('\n') || 'no dead letters');
  });

const schedules = program.command('schedules').description('cron schedules: each firing starts a run of a registered workflow');
schedules
  .command('create <workflow> <cron>')
  .description('start runs of <workflow> on <cron> (5 fields, or 6 with seconds first)')
  .option('--timezone <tz>', 'IANA time zone the pattern is read in', 'UTC')
  .option('--input <json>', 'the input of every run, as JSON', '{}')
  .option('--version <n>', 'pin a workflow version (default: the latest at each firing)')
  .action(async (workflow: string, cron: string, o: { timezone: string; input: string; version?: string }) => {
    const res = await client().createSchedule({ workflow, cron, timezone: o.timezone, input: JSON.parse(o.input) as Record<string, unknown>, ...(o.version ? { version: Number(o.version) } : {}) });
    print(res, () => `${res.id} ${res.workflow} "${res.cron}" ${res.timezone}; next ${res.nextRunAt ?? '?'}`);
  });
schedules
  .command('list')
  .description("the project's schedules and when each fires next")
  .action(async () => {
    const res = await client().listSchedules();
    print(res, () => res.items.map((x) => `${x.id}  ${x.workflow.padEnd(20)} "${x.cron}" ${x.timezone}  next ${x.nextRunAt ?? '?'}`).join('\n') || 'no schedules');
  });
schedules
  .command('delete <id>')
  .description('stop a schedule (runs it started go on)')
  .action(async (id: string) => {
    const res = await client().deleteSchedule(id);
    print(res, () => `deleted ${res.id}`);
  });

program
  .command('pools')
  .description('agent pools: desired and live sizes, policy, and the last scaling decisions')
  .action(async () => {
    const list = await client().listPools();
    print(list, () => formatPools(list));
  });

program
  .command('profile')
  .description('profile every process of the cluster for a while, then print the report naming the bottleneck (admin key for every project)')
  .option('-s, --seconds <n>', 'how long to profile', (v) => Number.parseInt(v, 10), 10)
  .option('--cpu-profile', 'also sample V8\'s CPU profiler for the top functions of each process (may cost several % of CPU while on)')
  .action(async (o: { seconds: number; cpuProfile?: boolean }) => {
    const c = client();
    const session = await c.startProfiling({ maxSeconds: Math.min(600, Math.max(1, o.seconds) + 30), cpuProfile: o.cpuProfile === true });
    if (!json()) process.stderr.write(`profiling ${session.processes.length} processes for ${o.seconds} s (session ${session.id})\n`);
    await new Promise((r) => setTimeout(r, Math.max(1, o.seconds) * 1000));
    const report = await c.stopProfiling(session.id);
    print(report, () => report.summary);
  });

program
  .command('top')
  .description('a live terminal dashboard: queues per role, agents, recent runs and events (q or Ctrl-C quits)')
  .option('-u, --url <url>', 'observability service URL (env MUSE_OBSERVABILITY_URL)', process.env.MUSE_OBSERVABILITY_URL ?? 'http://127.0.0.1:3004')
  .option('--interval <ms>', 'refresh period in ms', (v) => Number.parseInt(v, 10), 1000)
  .option('--once', 'print one screen and exit (also when stdout is not a terminal)')
  .action(async (o: { url: string; interval: number; once?: boolean }) => {
    process.exitCode = await top({ url: o.url.replace(/\/$/, ''), intervalMs: Math.max(100, o.interval), once: o.once === true });
  });

program
  .command('mcp')
  .description('serve Muse to an MCP client over stdio (tools, runs and artifacts as resources), with this API key')
  .option('-p, --project <name>', 'the project to act in, for a key with several (env MUSE_PROJECT)', process.env.MUSE_PROJECT)
  .action(async (o: { project?: string }) => {
    const g = program.opts<{ gateway: string; apiKey?: string }>();
    process.exitCode = await serveMcpOverStdio({ gateway: g.gateway.replace(/\/$/, ''), apiKey: resolveCliApiKey(g.apiKey, REPO_ROOT), ...(o.project ? { project: o.project } : {}) });
  });

program
  .command('agent')
  .description('a remote agent: run <command> for each step of <role> the gateway assigns (prompt on stdin, context in MUSE_* variables, stdout streamed back); needs a key with the "agent" scope')
  .argument('<command...>', 'the command to run per step, after --')
  .requiredOption('-r, --role <role...>', 'role(s) whose steps this agent takes')
  .option('-c, --capability <label...>', 'capabilities to declare (shown in GET /v1/agents)', [])
  .option('-n, --concurrency <n>', 'steps at once, per role', (v) => Number.parseInt(v, 10), 1)
  .option('--name <name>', 'a display name', DEFAULT_AGENT_NAME)
  .option('--agent-id <id>', 'resume as this agent id (else the gateway picks one; reconnects keep it)')
  .option('-p, --project <name>', 'take only this project\'s steps, for a key with several (env MUSE_PROJECT)', process.env.MUSE_PROJECT)
  .action(async (command: string[], o: { role: string[]; capability: string[]; concurrency: number; name: string; agentId?: string; project?: string }) => {
    const g = program.opts<{ gateway: string; apiKey?: string }>();
    process.exitCode = await runAgent({
      gateway: g.gateway.replace(/\/$/, ''),
      apiKey: resolveCliApiKey(g.apiKey, REPO_ROOT),
      roles: o.role,
      capabilities: o.capability,
      concurrency: o.concurrency,
      name: o.name,
      command,
      ...(o.agentId ? { agentId: o.agentId } : {}),
      ...(o.project ? { project: o.project } : {}),
    });
  });

const projects = program.command('projects').description('projects: every workflow, run and key belongs to one');
projects
  .command('create <name>')
  .description('create a project (needs an admin key for every project, such as the bootstrap key)')
  .option('--description <text>', 'what it is for')
  .action(async (name: string, o: { description?: string }) => {
    const res = await client().createProject(name, o.description);
    print(res, () => `created project ${res.name}`);
  });
projects
  .command('list')
  .description('the projects this key may use')
  .action(async () => {
    const res = await client().listProjects();
    print(res, () => res.items.map((p) => `${p.name.padEnd(24)} ${p.createdAt}  ${p.description ?? ''}`).join('\n') || '(none)');
  });

const keys = program.command('keys').description('API keys: create (shown once), list, revoke');
keys
  .command('create <name>')
  .description('create an API key; its secret is printed once and never again')
  .requiredOption('-p, --project <name...>', 'project(s) the key may use ("*" = every project)')
  .option('-s, --scope <scope...>', 'read, write, admin, agent', ['read'])
  .option('--expires-at <iso-time>', 'the key stops working at this time')
  .action(async (name: string, o: { project: string[]; scope: string[]; expiresAt?: string }) => {
    const res = await client().createApiKey({ name, projects: o.project, scopes: o.scope, ...(o.expiresAt !== undefined ? { expiresAt: o.expiresAt } : {}) });
    print(res, () => `${res.key}\n(key id ${res.id}; projects ${res.projects.join(',')}; scopes ${res.scopes.join(',')}; this is the only time the key is shown)`);
  });
keys
  .command('list')
  .description('API keys within your projects (never their secrets)')
  .action(async () => {
    const res = await client().listApiKeys();
    print(
      res,
      () =>
        res.items
          .map((k) => `${k.id}  ${k.name.padEnd(20)} ${k.projects.join(',').padEnd(16)} ${k.scopes.join(',').padEnd(18)} ${k.revokedAt ? `revoked ${k.revokedAt}` : k.expiresAt ? `expires ${k.expiresAt}` : 'active'}`)
          .join('\n') || '(none)',
    );
  });
keys
  .command('revoke <id>')
  .description('revoke a key at once (the id is the 12 hex characters after muse_)')
  .action(async (id: string) => {
    const res = await client().revokeApiKey(id);
    print(res, () => `revoked ${res.id} (${res.name})`);
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

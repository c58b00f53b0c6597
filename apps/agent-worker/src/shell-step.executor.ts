/**
 * Runs a shell step in its run's workspace and turns the result into a
 * `ShellOutput` or a catalogue error.
 */
import { mkdir } from 'node:fs/promises';
import { constants } from 'node:os';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { MuseError, type ShellOutput, type StepJob } from '@muse/contracts';
import { SpanKind, withSpan } from '@muse/telemetry';
import type { ShellRunner, ShellRunResult } from './shell.runner.js';
import { sandboxedArgv, type Sandbox, type SandboxLimits } from './shell.sandbox.js';
import { isStepHandedBack } from './step.errors.js';

/** Letters, digits, `.`, `_` and `-`, starting with a letter or digit: a run id that is one plain folder name. */
const RUN_ID_FOLDER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** How much of stdout and stderr a failure carries in its details, in characters (the end, where errors are). */
export const DETAIL_TAIL_CHARS = 4_096;

/** How a shell reports a child killed by SIGXCPU (RLIMIT_CPU): 128 + 24 on Linux. */
const SIGXCPU_STATUS = 128 + (constants.signals.SIGXCPU ?? 24);

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The absolute workspace folder of a run: `<root>/<runId>`. The run id comes
 * from a job payload, so it must not climb out of the root (`..`, `/`).
 */
export function workspaceFor(root: string, runId: string): string {
  const base = resolve(root);
  const dir = resolve(base, runId);
  const rel = relative(base, dir);
  if (!RUN_ID_FOLDER.test(runId) || rel !== runId || rel.startsWith('..') || isAbsolute(rel) || rel.includes(sep)) {
    throw new MuseError('MUSE_ERR_REQUEST_INVALID', `run id ${JSON.stringify(runId)} cannot name a workspace folder`);
  }
  return dir;
}

export interface ShellStepExecutorOptions {
  /** Root of the per-run workspaces (MUSE_WORKSPACE_DIR). */
  workspaceRoot: string;
  /** Cap on captured stdout and stderr, each, in bytes. */
  outputLimitBytes: number;
  /** @default process.env.PATH */
  path?: string;
  /** @default 2_000 ms */
  killGraceMs?: number;
  /** How commands are started (probed once at start); unset = no sandbox. */
  sandbox?: Sandbox;
  /** CPU and memory limits of every step process. @default none */
  limits?: SandboxLimits;
  /** Resolves the secrets a step names (SecretStore); unset = a step naming secrets fails. */
  secrets?: { resolve(names: readonly string[]): Record<string, string> };
}

export class ShellStepExecutor {
  constructor(
    private readonly runner: Pick<ShellRunner, 'run'>,
    private readonly opts: ShellStepExecutorOptions,
  ) {}

  async run(job: StepJob, signal: AbortSignal): Promise<ShellOutput> {
    return withSpan('muse.tool.shell', { kind: SpanKind.INTERNAL, attributes: { 'muse.tool': 'shell', 'muse.step_id': job.stepId } }, async (span) => {
      const out = await this.runShell(job, signal);
      span.setAttribute('process.exit.code', out.exitCode);
      return out;
    });
  }

  private async runShell(job: StepJob, signal: AbortSignal): Promise<ShellOutput> {
    if (job.command === undefined) {
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', `shell step "${job.stepId}" has no command`);
    }
    const cwd = workspaceFor(this.opts.workspaceRoot, job.runId);
    await mkdir(cwd, { recursive: true });
    const secrets = job.secrets?.length ? this.resolveSecrets(job.secrets) : {};
    const sandbox: Sandbox = this.opts.sandbox ?? { kind: 'none', reason: 'not configured' };
    let res: ShellRunResult;
    try {
      res = await this.runner.run({
        command: job.command,
        argv: sandboxedArgv(sandbox, {
          shell: '/bin/sh',
          command: job.command,
          workspace: cwd,
          network: job.network === true,
          limits: this.opts.limits ?? { cpuSeconds: 0, memoryBytes: 0 },
        }),
        cwd,
        // Minimal on purpose: the worker's own secrets (REDIS_URL, API keys) stay out of user commands;
        // only the secrets the step names are added, and Muse's own variables win over a secret of the same name.
        env: {
          ...secrets,
          PATH: this.opts.path ?? process.env.PATH ?? DEFAULT_PATH,
          HOME: cwd,
          LANG: 'C.UTF-8',
          MUSE_RUN_ID: job.runId,
          MUSE_STEP_ID: job.stepId,
          MUSE_ATTEMPT: String(job.attempt),
        },
        outputLimitBytes: this.opts.outputLimitBytes,
        signal,
        ...(this.opts.killGraceMs !== undefined ? { killGraceMs: this.opts.killGraceMs } : {}),
      });
    } catch (err) {
      throw new MuseError('MUSE_ERR_INTERNAL', `could not start the shell: ${(err as Error).message}`, { cause: err });
    }
    const tails = { exitCode: res.exitCode, stdout: tail(res.stdout), stderr: tail(res.stderr) };
    if (res.aborted) {
      if (isStepHandedBack(signal.reason)) throw signal.reason;
      throw new MuseError('MUSE_ERR_STEP_TIMEOUT', `shell step "${job.stepId}" ran past ${job.timeoutMs} ms; its process group was killed`, {
        details: { timeoutMs: job.timeoutMs, ...tails },
      });
    }
    if (res.exitCode !== 0) {
      // Say which limit ended it when one did (issue 4: a clear error on each limit), rather than a bare status 152.
      const cpu = (res.signal === 'SIGXCPU' || res.exitCode === SIGXCPU_STATUS) && (this.opts.limits?.cpuSeconds ?? 0) > 0;
      const why = cpu ? `: killed by SIGXCPU, its CPU time limit (MUSE_SANDBOX_CPU_SECONDS = ${this.opts.limits!.cpuSeconds} s) ran out` : '';
      throw new MuseError('MUSE_ERR_STEP_EXIT_NONZERO', `shell step "${job.stepId}" exited with status ${res.exitCode}${why}`, {
        details: { ...tails, ...(cpu ? { limit: 'cpu', cpuSeconds: this.opts.limits!.cpuSeconds } : {}), ...(res.truncated ? { truncated: true, outputLimitBytes: this.opts.outputLimitBytes } : {}) },
      });
    }
    const out: ShellOutput = { exitCode: res.exitCode, stdout: res.stdout, stderr: res.stderr };
    if (res.truncated) out.truncated = true;
    return out;
  }

  private resolveSecrets(names: readonly string[]): Record<string, string> {
    if (!this.opts.secrets) {
      throw new MuseError('MUSE_ERR_STEP_SECRET_MISSING', `this worker has no secrets configured; the step needs ${names.join(', ')}`, { details: { missing: names } });
    }
    return this.opts.secrets.resolve(names);
  }
}

function tail(s: string): string {
  return s.length <= DETAIL_TAIL_CHARS ? s : s.slice(-DETAIL_TAIL_CHARS);
}

/**
 * Runs one shell command as its own process group, capturing capped output.
 *
 * The group matters: `sh -c "make test"` forks; killing only `sh` would leave
 * its children running (and holding our pipes open). So the shell is spawned
 * detached (setsid: a new session and process group whose id is its pid) and
 * every kill goes to the whole group with `kill(-pid)`. When the shell exits,
 * whatever it left running in its group is killed too: a step does not leak
 * processes past its end.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface ShellRunOptions {
  command: string;
  /** Absolute working directory; must exist. */
  cwd: string;
  /** The whole environment of the command (nothing is inherited). */
  env: Record<string, string>;
  /** Cap on captured stdout and on captured stderr, each, in bytes. */
  outputLimitBytes: number;
  /** Aborting kills the group: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  /** @default 2_000 ms */
  killGraceMs?: number;
  /** @default "/bin/sh" */
  shell?: string;
  /** The whole argv to spawn instead of `[shell, "-c", command]` (a sandbox and limits around it; see shell.sandbox.ts). */
  argv?: string[];
}

export interface ShellRunResult {
  /** The exit status; 128 + the signal number when a signal ended the shell (as shells report it). */
  exitCode: number;
  /** The signal that ended the shell, if one did. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when stdout or stderr went past the cap and was cut. */
  truncated: boolean;
  /** True when `signal` aborted the run and the group was killed. */
  aborted: boolean;
  durationMs: number;
}

/** After the shell exits, how long its stdout/stderr may stay open (held by an escaped grandchild) before we stop waiting, in ms. */
const PIPE_CLOSE_WAIT_MS = 2_000;

export class ShellRunner {
  /** Process group ids of the commands running now. */
  private readonly groups = new Set<number>();

  get running(): number {
    return this.groups.size;
  }

  /** Sends `sig` to every running group: used when the process must exit now. Synchronous, so it works in an `exit` handler. */
  killAll(sig: NodeJS.Signals = 'SIGKILL'): void {
    for (const pgid of this.groups) killGroup(pgid, sig);
  }

  run(opts: ShellRunOptions): Promise<ShellRunResult> {
    const started = Date.now();
    const killGraceMs = opts.killGraceMs ?? 2_000;
    if (opts.signal?.aborted) {
      return Promise.resolve({ exitCode: 128 + constants.signals.SIGTERM, signal: 'SIGTERM', stdout: '', stderr: '', truncated: false, aborted: true, durationMs: 0 });
    }
    return new Promise<ShellRunResult>((resolve, reject) => {
      const [file, ...args] = opts.argv ?? [opts.shell ?? '/bin/sh', '-c', opts.command];
      const child = spawn(file!, args, {
        cwd: opts.cwd,
        env: opts.env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const stdout = new CappedBuffer(opts.outputLimitBytes);
      const stderr = new CappedBuffer(opts.outputLimitBytes);
      child.stdout.on('data', (c: Buffer) => stdout.push(c));
      child.stderr.on('data', (c: Buffer) => stderr.push(c));

      const pgid = child.pid;
      if (pgid !== undefined) this.groups.add(pgid);
      let aborted = false;
      let killTimer: NodeJS.Timeout | undefined;
      let pipeTimer: NodeJS.Timeout | undefined;
      let settled = false;

      const onAbort = (): void => {
        if (pgid === undefined || aborted) return;
        aborted = true;
        killGroup(pgid, 'SIGTERM');
        killTimer = setTimeout(() => killGroup(pgid, 'SIGKILL'), killGraceMs);
        killTimer.unref();
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      const finish = (code: number | null, sig: NodeJS.Signals | null): void => {
        if (settled) return;
        settled = true;
        // After an abort the kill timer stays armed: stragglers that trapped
        // SIGTERM and let go of our pipes still get their SIGKILL.
        if (!aborted) clearTimeout(killTimer);
        clearTimeout(pipeTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (pgid !== undefined) this.groups.delete(pgid);
        resolve({
          exitCode: code ?? (sig ? 128 + (constants.signals[sig] ?? 0) : 1),
          signal: sig,
          stdout: stdout.text(),
          stderr: stderr.text(),
          truncated: stdout.truncated || stderr.truncated,
          aborted,
          durationMs: Date.now() - started,
        });
      };

      child.once('error', (err) => {
        // Spawning failed (no such shell, no such cwd): nothing ran.
        if (settled) return;
        settled = true;
        clearTimeout(killTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (pgid !== undefined) this.groups.delete(pgid);
        reject(err);
      });
      child.once('exit', (code, sig) => {
        // Leftovers of the step (background jobs) die with it; they would
        // otherwise keep our pipes open and outlive the step. After an abort
        // they get their SIGTERM grace from the kill timer instead.
        if (pgid !== undefined && !aborted) killGroup(pgid, 'SIGKILL');
        // A process that escaped the group (its own setsid) may still hold
        // the pipes: stop waiting for them after a while.
        pipeTimer = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          finish(code, sig);
        }, PIPE_CLOSE_WAIT_MS + (aborted ? killGraceMs : 0));
      });
      child.once('close', (code, sig) => finish(code, sig));
    });
  }
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** Keeps the first `limit` bytes; counts whether anything was dropped. Keeps reading so the child never blocks on a full pipe. */
export class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    const room = this.limit - this.bytes;
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    if (chunk.length > room) {
      this.chunks.push(chunk.subarray(0, room));
      this.bytes += room;
      this.truncated = true;
      return;
    }
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  /** The kept bytes as UTF-8, without a character cut in half at the cap. */
  text(): string {
    const buf = Buffer.concat(this.chunks);
    return buf.subarray(0, this.truncated ? utf8SafeEnd(buf) : buf.length).toString('utf8');
  }
}

/** The length of `buf` without a trailing incomplete UTF-8 sequence. */
export function utf8SafeEnd(buf: Buffer): number {
  // Walk back over at most 3 continuation bytes to the lead byte.
  let i = buf.length - 1;
  let cont = 0;
  while (i >= 0 && cont < 3 && (buf[i]! & 0xc0) === 0x80) {
    i--;
    cont++;
  }
  if (i < 0) return buf.length;
  const lead = buf[i]!;
  const need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : 0;
  return cont < need ? i : buf.length;
}

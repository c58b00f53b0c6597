/**
 * How a shell step's command is started: under bubblewrap when the host
 * allows it, else directly (with the minimal environment the executor
 * builds, and said plainly at start-up).
 *
 * Bubblewrap (Debian package `bubblewrap`) rather than a hand-made
 * namespace set-up: it is the well-reviewed tool Flatpak relies on. The
 * sandbox: every namespace unshared (`--unshare-all`; the network one shared
 * again only for a step with `network: true`, so otherwise only a private
 * loopback exists), the whole root bound read-only, a fresh /dev, /proc and a
 * private /tmp, the run's workspace the only writable bind, `--new-session`
 * (no TIOCSTI into the worker's terminal) and `--die-with-parent` (a killed
 * worker leaves no step behind).
 *
 * CPU time and address-space limits are set with the shell's own `ulimit`
 * (RLIMIT_CPU, RLIMIT_AS) just before `exec`ing the command, in both modes:
 * no extra binary (prlimit) needed, and the limits hold for every process the
 * command starts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MuseError } from '@muse/contracts';

export type SandboxMode = 'auto' | 'bwrap' | 'none';

export type Sandbox = { kind: 'bwrap'; bwrap: string } | { kind: 'none'; reason: string };

export interface SandboxLimits {
  /** RLIMIT_CPU of each process, in seconds; 0 = none. */
  cpuSeconds: number;
  /** RLIMIT_AS of each process, in bytes; 0 = none. */
  memoryBytes: number;
}

/** How long the start-up probe may take, in ms. */
const PROBE_TIMEOUT_MS = 5_000;

/** The bubblewrap arguments (before `--` and the command) for a step in `workspace`. */
export function bwrapArgs(workspace: string, network: boolean): string[] {
  return [
    '--unshare-all',
    ...(network ? ['--share-net'] : []),
    '--die-with-parent',
    '--new-session',
    '--ro-bind', '/', '/',
    '--dev', '/dev',
    '--proc', '/proc',
    '--tmpfs', '/tmp',
    // After the /tmp tmpfs: a workspace under /tmp is bound over it, not hidden by it.
    '--bind', workspace, workspace,
    '--chdir', workspace,
  ];
}

/** `ulimit` lines for `limits` (RLIMIT_AS is set in KiB by `ulimit -v`). */
function ulimits(limits: SandboxLimits): string {
  const parts: string[] = [];
  // Soft limit N, then hard N+1 (soft first: a hard limit below the soft one is refused): at N s the process gets SIGXCPU (a status that names the limit), SIGKILL only if it traps that.
  // With soft = hard the kernel sends SIGKILL at once, indistinguishable from any other kill.
  if (limits.cpuSeconds > 0) parts.push(`ulimit -S -t ${Math.floor(limits.cpuSeconds)} && ulimit -H -t ${Math.floor(limits.cpuSeconds) + 1}`);
  if (limits.memoryBytes > 0) parts.push(`ulimit -v ${Math.max(1, Math.floor(limits.memoryBytes / 1024))}`);
  return parts.join(' && ');
}

/**
 * The argv that runs `command` with `shell -c`, its limits, and the sandbox.
 * The command goes in as a positional argument (`$1`), never pasted into
 * the wrapper script, so no quoting can break out of it.
 */
export function sandboxedArgv(sandbox: Sandbox, o: { shell: string; command: string; workspace: string; network: boolean; limits: SandboxLimits }): string[] {
  const limit = ulimits(o.limits);
  const inner = limit ? [o.shell, '-c', `${limit} && exec ${o.shell} -c "$1"`, 'muse-step', o.command] : [o.shell, '-c', o.command];
  return sandbox.kind === 'bwrap' ? [sandbox.bwrap, ...bwrapArgs(o.workspace, o.network), '--', ...inner] : inner;
}

/**
 * Decides the sandbox once at start: `none` when told so; otherwise runs a
 * trivial command under the same bubblewrap arguments a step gets (bwrap may
 * be installed yet unusable: no user namespaces, a container without
 * CAP_SYS_ADMIN). `bwrap` mode fails the boot when that probe fails.
 */
export function probeSandbox(mode: SandboxMode, bwrap = 'bwrap'): Sandbox {
  if (mode === 'none') return { kind: 'none', reason: 'MUSE_SANDBOX=none' };
  const ws = mkdtempSync(join(tmpdir(), 'muse-sandbox-probe-'));
  try {
    execFileSync(bwrap, [...bwrapArgs(ws, false), '--', '/bin/sh', '-c', 'touch ./probe'], { stdio: 'pipe', timeout: PROBE_TIMEOUT_MS, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    return { kind: 'bwrap', bwrap };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const reason =
      e.code === 'ENOENT'
        ? `bubblewrap (${bwrap}) is not installed (Debian: apt-get install bubblewrap)`
        : `bubblewrap does not work here: ${(e.stderr?.toString().trim() || e.message).slice(0, 300)}`;
    if (mode === 'bwrap') throw new MuseError('MUSE_ERR_SANDBOX_UNAVAILABLE', `MUSE_SANDBOX=bwrap but ${reason}`, { cause: err });
    return { kind: 'none', reason };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

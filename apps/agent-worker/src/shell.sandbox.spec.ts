/**
 * The sandbox against the real bubblewrap. Where bwrap does not work on the
 * host the sandbox tests are skipped with the probe's reason (the
 * no-sandbox path is tested either way).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MuseError, type StepJob } from '@muse/contracts';
import { ShellRunner } from './shell.runner.js';
import { ShellStepExecutor } from './shell-step.executor.js';

/**
 * A node binary the sandbox can see. The sandbox mounts a private, empty /tmp,
 * so this very binary is hidden when the checkout lives under /tmp (as CI's
 * clone may): then the system's node serves, which any Node host has.
 */
const SANDBOX_NODE = JSON.stringify(
  process.execPath.startsWith('/tmp/') && existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath,
);
import { probeSandbox, sandboxedArgv, type Sandbox } from './shell.sandbox.js';

const sandbox = probeSandbox('auto');
const skip = sandbox.kind === 'none' ? `bubblewrap unavailable: ${sandbox.reason}` : false;

const job = (command: string, over: Partial<StepJob> = {}): StepJob => ({
  runId: 'run_sbx1',
  project: 'default',
  stepId: 'sbx',
  attempt: 1,
  role: 'executor',
  kind: 'shell',
  command,
  timeoutMs: 20_000,
  ...over,
});

describe('sandboxedArgv', () => {
  test('passes the command as a positional argument, with limits before exec', () => {
    const argv = sandboxedArgv({ kind: 'none', reason: 'test' }, { shell: '/bin/sh', command: `echo "$HOME" '; rm -rf /'`, workspace: '/w', network: false, limits: { cpuSeconds: 5, memoryBytes: 1 << 30 } });
    assert.deepEqual(argv, ['/bin/sh', '-c', 'ulimit -S -t 5 && ulimit -H -t 6 && ulimit -v 1048576 && exec /bin/sh -c "$1"', 'muse-step', `echo "$HOME" '; rm -rf /'`]);
  });
  test('bwrap: no --share-net unless the step asks; the workspace is the only --bind', () => {
    const sb: Sandbox = { kind: 'bwrap', bwrap: 'bwrap' };
    const o = { shell: '/bin/sh', command: 'true', workspace: '/w', limits: { cpuSeconds: 0, memoryBytes: 0 } };
    const off = sandboxedArgv(sb, { ...o, network: false });
    const on = sandboxedArgv(sb, { ...o, network: true });
    assert.ok(off.includes('--unshare-all') && !off.includes('--share-net'));
    assert.ok(on.includes('--share-net'));
    assert.deepEqual(off.filter((a) => a === '--bind').length, 1);
    assert.deepEqual(off.slice(-4), ['--', '/bin/sh', '-c', 'true']);
  });
  test('MUSE_SANDBOX=none never probes; a missing binary is reported plainly, and fails the boot in bwrap mode', () => {
    assert.deepEqual(probeSandbox('none'), { kind: 'none', reason: 'MUSE_SANDBOX=none' });
    const missing = probeSandbox('auto', '/nonexistent/bwrap');
    assert.equal(missing.kind, 'none');
    assert.match((missing as { reason: string }).reason, /not installed/);
    assert.throws(() => probeSandbox('bwrap', '/nonexistent/bwrap'), (e: unknown) => e instanceof MuseError && e.code === 'MUSE_ERR_SANDBOX_UNAVAILABLE');
  });
});

describe('shell steps under bubblewrap', { skip }, () => {
  let root: string;
  let outside: string;
  let server: Server;
  let port: number;
  let exec: ShellStepExecutor;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'muse-sbx-ws-'));
    outside = mkdtempSync(join(tmpdir(), 'muse-sbx-out-'));
    server = createServer((s) => s.end('hello from the host\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    exec = new ShellStepExecutor(new ShellRunner(), { workspaceRoot: root, outputLimitBytes: 64 * 1024, sandbox, limits: { cpuSeconds: 30, memoryBytes: 2 * 1024 ** 3 } });
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  // bash's /dev/tcp would be simplest, but /bin/sh is dash: node connects instead.
  const connect = (p: number) => `${SANDBOX_NODE} -e 'require("net").connect(${p},"127.0.0.1").on("data",d=>{process.stdout.write(d);process.exit(0)}).on("error",e=>{console.error(e.code);process.exit(3)})'`;

  test('without network: true it cannot reach a TCP port on the host loopback', async () => {
    await assert.rejects(exec.run(job(connect(port)), new AbortController().signal), (err: unknown) => {
      assert.ok(err instanceof MuseError && err.code === 'MUSE_ERR_STEP_EXIT_NONZERO', String(err));
      assert.match(JSON.stringify(err.details), /ECONNREFUSED|ENETUNREACH/);
      return true;
    });
  });

  test('with network: true it can', async () => {
    const out = await exec.run(job(connect(port), { network: true }), new AbortController().signal);
    assert.equal(out.stdout, 'hello from the host\n');
  });

  test('it can write in its workspace, not outside it (a host temp dir, /etc, /usr)', async () => {
    const target = join(outside, 'escaped');
    const out = await exec.run(
      job(`echo in > inside.txt && cat inside.txt; (echo x > ${target}) 2>/dev/null && echo wrote-outside; (echo x > /etc/muse-sbx) 2>/dev/null && echo wrote-etc; (mkdir /usr/muse-sbx) 2>/dev/null && echo wrote-usr; echo done`),
      new AbortController().signal,
    );
    assert.equal(out.stdout, 'in\ndone\n');
    assert.equal(readFileSync(join(root, 'run_sbx1', 'inside.txt'), 'utf8'), 'in\n');
    assert.equal(existsSync(target), false);
    assert.equal(existsSync('/etc/muse-sbx'), false);
  });

  test('the CPU limit holds: a busy loop is killed by SIGXCPU', async () => {
    const tight = new ShellStepExecutor(new ShellRunner(), { workspaceRoot: root, outputLimitBytes: 1024, sandbox, limits: { cpuSeconds: 1, memoryBytes: 0 } });
    const started = Date.now();
    await assert.rejects(tight.run(job('while :; do :; done'), new AbortController().signal), (err: unknown) => {
      assert.ok(err instanceof MuseError && err.code === 'MUSE_ERR_STEP_EXIT_NONZERO', String(err));
      assert.match(err.message, /killed by SIGXCPU, its CPU time limit \(MUSE_SANDBOX_CPU_SECONDS = 1 s\) ran out/);
      assert.equal((err.details as { limit?: string }).limit, 'cpu');
      return true;
    });
    assert.ok(Date.now() - started < 10_000);
  });

  test('the memory limit holds: node starts under it, allocating past it fails', async () => {
    // Node itself reserves over 1 GiB of address space at start, hence a 2 GiB limit and a 3 GiB allocation.
    const tight = new ShellStepExecutor(new ShellRunner(), { workspaceRoot: root, outputLimitBytes: 4096, sandbox, limits: { cpuSeconds: 0, memoryBytes: 2 * 1024 ** 3 } });
    const node = SANDBOX_NODE;
    await assert.rejects(tight.run(job(`${node} -e 'console.log("started")' && ${node} -e 'Buffer.alloc(3 * 1024 ** 3, 1); console.log("allocated")'`), new AbortController().signal), (err: unknown) => {
      assert.ok(err instanceof MuseError && err.code === 'MUSE_ERR_STEP_EXIT_NONZERO', String(err));
      const d = err.details as { stdout: string };
      assert.equal(d.stdout, 'started\n');
      return true;
    });
  });

  test('the step gets exactly the secrets it names, as variables', async () => {
    const withSecrets = new ShellStepExecutor(new ShellRunner(), {
      workspaceRoot: root,
      outputLimitBytes: 4096,
      sandbox,
      secrets: { resolve: (names) => Object.fromEntries(names.map((n) => [n, `value-of-${n}`])) },
    });
    const out = await withSecrets.run(job('echo "$A_TOKEN|${B_TOKEN:-unset}|$PATH" | cut -c1-40', { secrets: ['A_TOKEN'] }), new AbortController().signal);
    assert.match(out.stdout, /^value-of-A_TOKEN\|unset\|/);
  });
});

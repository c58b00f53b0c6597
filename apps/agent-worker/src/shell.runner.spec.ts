import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CappedBuffer, ShellRunner, utf8SafeEnd, type ShellRunOptions } from './shell.runner.js';

/** Running (not gone, not a zombie waiting for a reaper: in a container, pid 1 may reap slowly). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

/** The pid a command wrote to `file`, once it has. */
function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

async function eventually(check: () => boolean, timeoutMs = 3_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

describe('ShellRunner', () => {
  let dir: string;
  const runner = new ShellRunner();
  const opts = (command: string, over: Partial<ShellRunOptions> = {}): ShellRunOptions => ({
    command,
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    outputLimitBytes: 1024,
    ...over,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'muse-shell-spec-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('captures stdout and stderr and exit code 0', async () => {
    const res = await runner.run(opts('echo out; echo err >&2'));
    assert.equal(res.exitCode, 0);
    assert.equal(res.stdout, 'out\n');
    assert.equal(res.stderr, 'err\n');
    assert.equal(res.truncated, false);
    assert.equal(res.aborted, false);
    assert.equal(res.signal, null);
  });

  test('reports non-zero exit codes', async () => {
    assert.equal((await runner.run(opts('exit 3'))).exitCode, 3);
    assert.equal((await runner.run(opts('false'))).exitCode, 1);
    assert.equal((await runner.run(opts('no-such-command-xyz 2>/dev/null'))).exitCode, 127);
  });

  test('a shell ended by a signal reports 128 + the signal number', async () => {
    const res = await runner.run(opts('kill -9 $$'));
    assert.equal(res.signal, 'SIGKILL');
    assert.equal(res.exitCode, 137);
  });

  test('runs in cwd with exactly the given environment and stdin closed', async () => {
    const res = await runner.run(opts('pwd; env | sort; cat; echo "stdin done"', { env: { PATH: process.env.PATH!, FOO: 'bar' } }));
    const lines = res.stdout.trim().split('\n');
    assert.equal(lines[0], dir);
    assert.ok(lines.includes('FOO=bar'));
    assert.ok(!lines.some((l) => l.startsWith('REDIS_URL=') || l.startsWith('NATS_URL=')));
    assert.equal(lines.at(-1), 'stdin done', 'cat read EOF at once');
  });

  test('caps each stream at the limit, keeps draining, and flags truncated', async () => {
    const res = await runner.run(opts('head -c 100000 /dev/zero | tr "\\0" a; head -c 10 /dev/zero | tr "\\0" b >&2', { outputLimitBytes: 1000 }));
    assert.equal(res.exitCode, 0, 'the child did not block on a full pipe');
    assert.equal(res.stdout, 'a'.repeat(1000));
    assert.equal(res.stderr, 'b'.repeat(10));
    assert.equal(res.truncated, true);
  });

  test('exactly the limit is not truncated', async () => {
    const res = await runner.run(opts('printf %s 0123456789', { outputLimitBytes: 10 }));
    assert.equal(res.stdout, '0123456789');
    assert.equal(res.truncated, false);
  });

  test('abort kills the whole process group, SIGTERM first', async () => {
    const pidFile = join(dir, 'pids');
    const ac = new AbortController();
    // A grandchild that would outlive its shell if only the shell were killed.
    const run = runner.run(opts(`sleep 30 & echo $! > ${pidFile}; wait`, { signal: ac.signal, killGraceMs: 500 }));
    assert.ok(await eventually(() => readPid(pidFile) !== undefined));
    const grandchild = readPid(pidFile)!;
    assert.ok(alive(grandchild));
    const t0 = Date.now();
    ac.abort();
    const res = await run;
    assert.equal(res.aborted, true);
    assert.ok(Date.now() - t0 < 2_000);
    assert.ok(await eventually(() => !alive(grandchild)), 'grandchild killed');
    assert.equal(runner.running, 0);
  });

  test('abort escalates to SIGKILL after the grace period for processes that ignore SIGTERM', async () => {
    const pidFile = join(dir, 'stubborn');
    const ac = new AbortController();
    const run = runner.run(
      opts(`sh -c 'trap "" TERM; echo $$ > ${pidFile}; while :; do sleep 0.05; done' & wait`, { signal: ac.signal, killGraceMs: 300 }),
    );
    assert.ok(await eventually(() => readPid(pidFile) !== undefined));
    await new Promise((r) => setTimeout(r, 100)); // let the trap be installed
    const stubborn = readPid(pidFile)!;
    assert.ok(alive(stubborn));
    const t0 = Date.now();
    ac.abort();
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(alive(stubborn), 'SIGTERM is ignored, SIGKILL not sent yet');
    await run;
    assert.ok(await eventually(() => !alive(stubborn), 2_000), 'SIGKILL after the grace period');
    assert.ok(Date.now() - t0 >= 300);
  });

  test('an already aborted signal runs nothing', async () => {
    const ac = new AbortController();
    ac.abort();
    const res = await runner.run(opts(`touch ${join(dir, 'ran')}`, { signal: ac.signal }));
    assert.equal(res.aborted, true);
    await assert.rejects(readFile(join(dir, 'ran')));
  });

  test('background processes left behind are killed when the shell exits', async () => {
    const pidFile = join(dir, 'bg');
    const res = await runner.run(opts(`sleep 30 >/dev/null 2>&1 & echo $! > ${pidFile}`));
    assert.equal(res.exitCode, 0);
    const bg = Number((await readFile(pidFile, 'utf8')).trim());
    assert.ok(await eventually(() => !alive(bg)), 'leftover killed');
  });

  test('killAll kills every running group', async () => {
    const a = runner.run(opts('sleep 30'));
    const b = runner.run(opts('sleep 30'));
    await eventually(() => runner.running === 2);
    runner.killAll('SIGKILL');
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.signal, 'SIGKILL');
    assert.equal(rb.signal, 'SIGKILL');
  });

  test('a missing cwd rejects (nothing ran)', async () => {
    await assert.rejects(runner.run(opts('true', { cwd: join(dir, 'missing') })));
    assert.equal(runner.running, 0);
  });
});

describe('CappedBuffer', () => {
  test('does not cut a UTF-8 character in half at the cap', () => {
    const b = new CappedBuffer(4);
    b.push(Buffer.from('aé€', 'utf8')); // 1 + 2 + 3 bytes
    assert.equal(b.truncated, true);
    assert.equal(b.text(), 'aé');
  });

  test('utf8SafeEnd', () => {
    assert.equal(utf8SafeEnd(Buffer.from('abc')), 3);
    assert.equal(utf8SafeEnd(Buffer.from('€').subarray(0, 2)), 0);
    assert.equal(utf8SafeEnd(Buffer.from('a€')), 4);
    assert.equal(utf8SafeEnd(Buffer.from('a😀').subarray(0, 4)), 1);
  });
});

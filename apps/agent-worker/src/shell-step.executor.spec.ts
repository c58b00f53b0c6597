import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { MuseError, type StepJob } from '@muse/contracts';
import { ShellRunner } from './shell.runner.js';
import { DETAIL_TAIL_CHARS, ShellStepExecutor, workspaceFor } from './shell-step.executor.js';
import { StepHandedBackError } from './step.errors.js';

const job = (over: Partial<StepJob> = {}): StepJob => ({
  runId: 'run_ws1',
  project: 'default',
  stepId: 'build',
  attempt: 2,
  role: 'executor',
  kind: 'shell',
  command: 'echo hi',
  timeoutMs: 10_000,
  ...over,
});

const museErr = (code: string) => (err: unknown) => err instanceof MuseError && err.code === code;

describe('workspaceFor', () => {
  test('is <root>/<runId>, absolute, even from a relative root', () => {
    const ws = workspaceFor('.muse/workspaces', 'run_abc');
    assert.ok(isAbsolute(ws));
    assert.equal(relative(join(process.cwd(), '.muse/workspaces'), ws), 'run_abc');
  });

  test('refuses run ids that would leave the root or are not one folder name', () => {
    for (const bad of ['..', '.', '../etc', 'a/b', '/abs', 'a\\b', '', ' x', 'run\0id', '.hidden']) {
      assert.throws(() => workspaceFor('/tmp/ws', bad), museErr('MUSE_ERR_REQUEST_INVALID'), JSON.stringify(bad));
    }
  });
});

describe('ShellStepExecutor', () => {
  let root: string;
  let exec: ShellStepExecutor;
  const never = new AbortController().signal;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'muse-ws-spec-'));
    exec = new ShellStepExecutor(new ShellRunner(), { workspaceRoot: root, outputLimitBytes: 2048, killGraceMs: 200 });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('creates the run workspace and runs there with the minimal environment', async () => {
    const out = await exec.run(job({ command: 'pwd; echo "$HOME|$LANG|$MUSE_RUN_ID|$MUSE_STEP_ID|$MUSE_ATTEMPT|${REDIS_URL:-unset}"; touch made-here' }), never);
    const ws = join(root, 'run_ws1');
    assert.ok((await stat(ws)).isDirectory());
    assert.deepEqual(out, { exitCode: 0, stdout: `${ws}\n${ws}|C.UTF-8|run_ws1|build|2|unset\n`, stderr: '' });
    await stat(join(ws, 'made-here'));
  });

  test('steps of one run share the workspace', async () => {
    await exec.run(job({ runId: 'run_share', command: 'echo data > file' }), never);
    const out = await exec.run(job({ runId: 'run_share', stepId: 'next', command: 'cat file' }), never);
    assert.equal(out.stdout, 'data\n');
  });

  test('a non-zero exit fails with MUSE_ERR_STEP_EXIT_NONZERO, retryable, with exit code and output tails', async () => {
    await assert.rejects(exec.run(job({ command: 'echo partial; echo boom >&2; exit 7' }), never), (err: unknown) => {
      assert.ok(err instanceof MuseError);
      assert.equal(err.code, 'MUSE_ERR_STEP_EXIT_NONZERO');
      assert.equal(err.retryable, true);
      assert.deepEqual(err.details, { exitCode: 7, stdout: 'partial\n', stderr: 'boom\n' });
      return true;
    });
  });

  test('failure details carry only the tail of long output', async () => {
    const big = new ShellStepExecutor(new ShellRunner(), { workspaceRoot: root, outputLimitBytes: 100_000 });
    await assert.rejects(big.run(job({ command: 'seq 1 10000; exit 1' }), never), (err: unknown) => {
      const d = (err as MuseError).details as { stdout: string };
      assert.equal(d.stdout.length, DETAIL_TAIL_CHARS);
      assert.ok(d.stdout.endsWith('9999\n10000\n'));
      return true;
    });
  });

  test('output over the cap is cut and flagged', async () => {
    const out = await exec.run(job({ command: 'head -c 5000 /dev/zero | tr "\\0" x' }), never);
    assert.equal(out.stdout.length, 2048);
    assert.equal(out.truncated, true);
  });

  test('the CPU limit (without a sandbox too) fails naming the limit; a failing step says its output was cut', async () => {
    const tight = new ShellStepExecutor(new ShellRunner(), { workspaceRoot: root, outputLimitBytes: 1024, limits: { cpuSeconds: 1, memoryBytes: 0 } });
    await assert.rejects(tight.run(job({ command: 'while :; do :; done' }), never), (err: unknown) => {
      assert.ok(err instanceof MuseError && err.code === 'MUSE_ERR_STEP_EXIT_NONZERO', String(err));
      assert.match(err.message, /exited with status 152: killed by SIGXCPU, its CPU time limit \(MUSE_SANDBOX_CPU_SECONDS = 1 s\) ran out/);
      assert.equal((err.details as { limit?: string }).limit, 'cpu');
      return true;
    });
    await assert.rejects(tight.run(job({ command: 'head -c 5000 /dev/zero | tr "\\0" x; exit 3' }), never), (err: unknown) => {
      assert.ok(err instanceof MuseError && err.code === 'MUSE_ERR_STEP_EXIT_NONZERO', String(err));
      const d = err.details as { truncated?: boolean; outputLimitBytes?: number; limit?: string };
      assert.deepEqual([d.truncated, d.outputLimitBytes, d.limit], [true, 1024, undefined]);
      return true;
    });
  });

  test('the deadline kills the group and fails with MUSE_ERR_STEP_TIMEOUT', async () => {
    const deadline = new AbortController();
    const pidFile = join(root, 'run_ws1', 'sleeper');
    const running = exec.run(job({ command: `sleep 30 & echo $! > ${pidFile}; wait`, timeoutMs: 100 }), deadline.signal);
    setTimeout(() => deadline.abort(new MuseError('MUSE_ERR_STEP_TIMEOUT')), 300);
    await assert.rejects(running, (err: unknown) => {
      assert.ok(err instanceof MuseError);
      assert.equal(err.code, 'MUSE_ERR_STEP_TIMEOUT');
      assert.equal(err.retryable, true);
      return true;
    });
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    await new Promise((r) => setTimeout(r, 100));
    const state = await readFile(`/proc/${pid}/stat`, 'utf8').then((s) => s.slice(s.lastIndexOf(')') + 2)[0], () => 'gone');
    assert.ok(state === 'gone' || state === 'Z', `sleeper state ${state}`);
  });

  test('a hand-back abort is rethrown as is, not reported as a timeout', async () => {
    const ac = new AbortController();
    const running = exec.run(job({ command: 'sleep 30' }), ac.signal);
    setTimeout(() => ac.abort(new StepHandedBackError()), 100);
    await assert.rejects(running, (err: unknown) => err instanceof StepHandedBackError);
  });

  test('a shell job without a command or with a bad run id fails non-retryably', async () => {
    await assert.rejects(exec.run(job({ command: undefined }), never), museErr('MUSE_ERR_REQUEST_INVALID'));
    await assert.rejects(exec.run(job({ runId: '../../etc' }), never), museErr('MUSE_ERR_REQUEST_INVALID'));
  });
});

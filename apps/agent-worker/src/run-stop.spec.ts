import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ShellOutput, StepJob, StepReport } from '@muse/contracts';
import { reportMsgId } from './step-report.publisher.js';
import { StepProcessor } from './step.processor.js';

const job: StepJob = { runId: 'run_s1', project: 'p', stepId: 'build', attempt: 2, role: 'executor', kind: 'shell', command: 'sleep 100', timeoutMs: 60_000 };

function processor(published: StepReport[]) {
  return new StepProcessor({
    agentId: 'w',
    agent: { run: async () => ({ text: '', model: 'm', usage: { inputTokens: 0, outputTokens: 0 } }) },
    // A step that runs until its signal aborts, like a shell step.
    shell: {
      run: (_job, signal) =>
        new Promise<ShellOutput>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })),
    },
    artifacts: { upload: async () => ({ digest: 'sha256:x', size: 0 }) },
    reports: { publish: async (r) => void published.push(r) },
    // Report `started` at once: the second test reads the started report's message id.
    startedReportDelayMs: 0,
  });
}

test('a run-stop notice aborts the steps of that run only; they report MUSE_ERR_RUN_CANCELLED', async () => {
  const published: StepReport[] = [];
  const p = processor(published);
  const mine = p.process(job);
  const other = p.process({ ...job, runId: 'run_s2' });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(p.stopRun('run_nope'), 0);
  assert.equal(p.stopRun('run_s1'), 1);
  const res = await mine;
  assert.equal(res.outcome, 'failed');
  assert.equal(res.report.error?.code, 'MUSE_ERR_RUN_CANCELLED');
  assert.equal(p.stopRun('run_s1'), 0, 'the finished step left the registry');
  assert.equal(p.stopRun('run_s2'), 1);
  await other;
});

test('a forEach element reports its index, and its message ids are its own', async () => {
  const published: StepReport[] = [];
  const p = processor(published);
  const run = p.process({ ...job, index: 7 });
  await new Promise((r) => setTimeout(r, 20));
  p.stopRun('run_s1');
  await run;
  assert.deepEqual(published.map((r) => r.index), [7, 7]);
  assert.equal(reportMsgId(published[0]!), 'run_s1.build#7.2.started.w');
  assert.notEqual(reportMsgId({ ...published[1]!, index: 8 }), reportMsgId(published[1]!));
});

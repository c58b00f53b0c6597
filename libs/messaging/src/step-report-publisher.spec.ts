import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Command, StepReport } from '@muse/contracts';
import { CommandTooLargeError } from './errors.js';
import { reportMsgId, StepReportPublisher } from './step-report-publisher.js';

const report: StepReport = {
  kind: 'step-report', runId: 'run_1', project: 'default', stepId: 's', attempt: 3, agentId: 'host-1-2-ab12', outcome: 'started', at: '2025-01-01T00:00:00Z',
};
const noSleep = { sleep: async () => undefined };

describe('reportMsgId', () => {
  test('started carries the agent id; completed and failed do not', () => {
    assert.equal(reportMsgId(report), 'run_1.s.3.started.host-1-2-ab12');
    assert.equal(reportMsgId({ ...report, outcome: 'completed' }), 'run_1.s.3.completed');
    assert.equal(reportMsgId({ ...report, outcome: 'failed' }), 'run_1.s.3.failed');
  });
});

describe('StepReportPublisher', () => {
  test('publishes with the message id', async () => {
    const sent: Array<[Command, string | undefined]> = [];
    const p = new StepReportPublisher({ publishCommand: async (cmd, id) => (sent.push([cmd, id]), { seq: 1, duplicate: false }) });
    await p.publish(report);
    assert.deepEqual(sent, [[report, 'run_1.s.3.started.host-1-2-ab12']]);
  });

  test('retries a failed publish, with the same message id, until it is stored', async () => {
    const ids: Array<string | undefined> = [];
    const warnings: unknown[] = [];
    const p = new StepReportPublisher(
      {
        publishCommand: async (_cmd, id) => {
          ids.push(id);
          if (ids.length < 3) throw new Error('503 no responders');
          return { seq: 9, duplicate: false };
        },
      },
      { warn: (o: unknown) => void warnings.push(o) },
      noSleep,
    );
    assert.deepEqual(await p.publish(report), { seq: 9, duplicate: false, report });
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids).size, 1);
    assert.equal(warnings.length, 2);
  });

  test('gives up after the last try and throws', async () => {
    let n = 0;
    const p = new StepReportPublisher({ publishCommand: async () => { n++; throw new Error('down'); } }, undefined, { ...noSleep, attempts: 4 });
    await assert.rejects(p.publish(report), /down/);
    assert.equal(n, 4);
  });

  test('a completion too large for a message is not retried: the attempt fails for good, saying how large it was', async () => {
    const sent: Command[] = [];
    const limit = 1_000;
    const p = new StepReportPublisher(
      {
        publishCommand: async (cmd) => {
          const bytes = Buffer.byteLength(JSON.stringify(cmd));
          if (bytes > limit) throw new CommandTooLargeError(cmd.kind, bytes, limit);
          sent.push(cmd);
          return { seq: sent.length, duplicate: false };
        },
      },
      undefined,
      noSleep,
    );
    const big: StepReport = { ...report, outcome: 'completed', output: { text: 'x'.repeat(2_000) }, artifacts: [{ name: 'output', digest: 'sha256:00', size: 1, mediaType: 'application/json' }] };
    const stored = await p.publish(big);
    assert.equal(sent.length, 1, 'one publish of the failure, after one refused completion');
    assert.equal(stored.report.outcome, 'failed');
    assert.deepEqual(stored.report, sent[0]);
    assert.equal(stored.report.output, undefined);
    assert.equal(stored.report.artifacts, undefined);
    assert.equal(stored.report.error?.code, 'MUSE_ERR_STEP_OUTPUT_TOO_LARGE');
    assert.equal(stored.report.error?.retryable, false);
    const details = stored.report.error?.details as { bytes: number; limitBytes: number };
    assert.equal(details.limitBytes, limit);
    assert.ok(details.bytes > 2_000);
    assert.equal(stored.report.spent, undefined, 'an output without usage spent nothing');
    // An agent's output: its calls were charged, so the failure carries what they spent.
    const usage = { inputTokens: 120, outputTokens: 3_000 };
    const agent = await p.publish({ ...big, attempt: 2, output: { text: 'y'.repeat(2_000), model: 'm', provider: 'oa', usage, cost: 0.25 } });
    assert.equal(agent.report.outcome, 'failed');
    assert.deepEqual(agent.report.spent, { ...usage, cost: 0.25, provider: 'oa', model: 'm' });
    const replayed = await p.publish({ ...big, attempt: 3, output: { text: 'y'.repeat(2_000), model: 'm', usage, call: { replayed: true } } });
    assert.equal(replayed.report.spent, undefined, 'a replayed call spent nothing');
    // Anything else too large (a failure's own report) is refused at once, not tried six times.
    let tries = 0;
    const never = new StepReportPublisher({ publishCommand: async (cmd) => { tries++; throw new CommandTooLargeError(cmd.kind, 2_000, limit); } }, undefined, noSleep);
    await assert.rejects(never.publish({ ...report, outcome: 'failed', error: { code: 'MUSE_ERR_INTERNAL', message: 'x', retryable: false } }), CommandTooLargeError);
    assert.equal(tries, 1);
  });

  test('refuses a report that breaks the contract', async () => {
    const p = new StepReportPublisher({ publishCommand: async () => ({ seq: 1, duplicate: false }) });
    await assert.rejects(p.publish({ ...report, attempt: 0 }));
  });
});

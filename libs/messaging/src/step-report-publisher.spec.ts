import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Command, StepReport } from '@muse/contracts';
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
    assert.deepEqual(await p.publish(report), { seq: 9, duplicate: false });
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

  test('refuses a report that breaks the contract', async () => {
    const p = new StepReportPublisher({ publishCommand: async () => ({ seq: 1, duplicate: false }) });
    await assert.rejects(p.publish({ ...report, attempt: 0 }));
  });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { museNames, type StepProgress } from '@muse/contracts';
import { SecretScrubber } from '@muse/telemetry';
import { ProgressPublisher } from './progress.publisher.js';

const job = { project: 'p', runId: 'run_1', stepId: 'ask', attempt: 2 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder() {
  const sent: Array<{ subject: string; p: StepProgress }> = [];
  return { sent, bus: { publish: (subject: string, p: unknown) => void sent.push({ subject, p: p as StepProgress }) } };
}

describe('ProgressPublisher', () => {
  test('the first delta goes out at once, later ones at most every intervalMs, the rest at finish; chunks count from 1', async () => {
    const { sent, bus } = recorder();
    const s = new ProgressPublisher(bus, museNames('ns'), 100, undefined, 0).start(job);
    s.delta('a');
    s.delta('b');
    s.delta('c');
    assert.equal(sent.length, 1);
    await sleep(130);
    assert.equal(sent.length, 2);
    s.delta('d');
    s.finish();
    s.delta('ignored after finish');
    assert.deepEqual(sent.map((m) => [m.p.chunk, m.p.text]), [[1, 'a'], [2, 'bc'], [3, 'd']]);
    assert.equal(sent[0]!.subject, museNames('ns').stepProgressSubject('run_1'));
    assert.deepEqual({ ...sent[0]!.p, text: undefined, chunk: undefined }, { ...job, text: undefined, chunk: undefined });
  });

  test('a secret split across deltas is scrubbed whole: the tail is held back until finish', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('TOKEN', 'canary-0123456789');
    const { sent, bus } = recorder();
    const s = new ProgressPublisher(bus, museNames('ns'), 0, scrubber, 32).start(job);
    for (const d of ['the key is cana', 'ry-01234', '56789 and that is all, folks; more text follows here to flush']) s.delta(d);
    s.finish();
    const text = sent.map((m) => m.p.text).join('');
    assert.equal(text, 'the key is [redacted:TOKEN] and that is all, folks; more text follows here to flush');
    assert.ok(!sent.some((m) => m.p.text.includes('canary') || m.p.text.includes('ry-01234')));
  });
});

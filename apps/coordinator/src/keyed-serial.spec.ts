import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedSerial } from './keyed-serial.js';

/** A hold that counts how often it was opened per key and hands out that count as its token. */
function counting(opts: { failOpens?: number; lostAfter?: number } = {}) {
  const opened: Record<string, number> = {};
  let failures = opts.failOpens ?? 0;
  const hold = async (key: string, body: (held: { token: number; uses: number }) => Promise<void>) => {
    await new Promise((r) => setImmediate(r)); // acquiring takes a round trip
    if (failures > 0) {
      failures--;
      throw new Error('lock not acquired');
    }
    opened[key] = (opened[key] ?? 0) + 1;
    await body({ token: opened[key]!, uses: 0 });
    await new Promise((r) => setImmediate(r)); // so does releasing
  };
  return { opened, hold };
}

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('KeyedSerial', () => {
  test('tasks of one key run one at a time, in order, and those that queued share one hold', async () => {
    const { opened, hold } = counting();
    const serial = new KeyedSerial(hold);
    const order: string[] = [];
    let running = 0;
    const task = (name: string) => async (held: { token: number }) => {
      assert.equal(++running, 1, 'two tasks of one key ran at once');
      await tick();
      order.push(`${name}@${held.token}`);
      running--;
      return name;
    };
    const results = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => serial.run('run-1', task(n))));
    assert.deepEqual(results, ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(order, ['a@1', 'b@1', 'c@1', 'd@1', 'e@1']);
    assert.equal(opened['run-1'], 1);
    assert.equal(serial.pending('run-1'), 0);
    // Once idle, the next task opens a new hold.
    assert.equal(await serial.run('run-1', async (h) => h.token), 2);
  });

  test('a hold runs at most maxPerHold tasks; the rest get a new one', async () => {
    const { opened, hold } = counting();
    const serial = new KeyedSerial(hold, { maxPerHold: 2 });
    const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => serial.run('k', async (h) => h.token)));
    assert.deepEqual(tokens, [1, 1, 2, 2, 3]);
    assert.equal(opened.k, 3);
  });

  test('a failing task fails alone and ends its hold; the next ones run in a fresh hold', async () => {
    const { hold } = counting();
    const serial = new KeyedSerial(hold);
    const outcomes = await Promise.allSettled([
      serial.run('k', async (h) => h.token),
      serial.run('k', async () => {
        throw new Error('boom');
      }),
      serial.run('k', async (h) => h.token),
    ]);
    assert.deepEqual(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)), [1, 'boom', 2]);
  });

  test('a hold that cannot be opened fails only the task that asked for it', async () => {
    const { hold } = counting({ failOpens: 1 });
    const serial = new KeyedSerial(hold);
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => serial.run('k', async (h) => `${i}@${h.token}`)));
    assert.deepEqual(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)), ['lock not acquired', '2@1', '3@1']);
  });

  test('a hold reported lost is given up after the task that was running', async () => {
    const { hold } = counting();
    const serial = new KeyedSerial(hold, { lost: (h) => h.uses++ >= 0 }); // lost as soon as one task ran in it
    const tokens = await Promise.all([1, 2, 3].map(() => serial.run('k', async (h) => h.token)));
    assert.deepEqual(tokens, [1, 2, 3]);
  });

  test('upcoming() shows the tags of the tasks the open hold will run, the running one first', async () => {
    const { hold } = counting();
    const serial = new KeyedSerial<{ token: number }, string>(hold, { maxPerHold: 3 });
    const seen: string[][] = [];
    const task = async () => void seen.push(serial.upcoming('k'));
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((t) => serial.run('k', task, t)));
    // Holds of 3: a b c, then d e; each sees itself and the rest of its own hold only.
    assert.deepEqual(seen, [['a', 'b', 'c'], ['b', 'c'], ['c'], ['d', 'e'], ['e']]);
    assert.deepEqual(serial.upcoming('k'), [], 'no hold open');
  });

  test('different keys run at the same time', async () => {
    const { hold } = counting();
    const serial = new KeyedSerial(hold);
    let running = 0;
    let most = 0;
    await Promise.all(['a', 'b', 'c'].map((k) => serial.run(k, async () => {
      most = Math.max(most, ++running);
      await tick();
      running--;
    })));
    assert.equal(most, 3);
  });
});

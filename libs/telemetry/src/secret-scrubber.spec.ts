import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { SecretScrubber, processScrubber } from './secret-scrubber.js';
import { createLogger } from './logger.js';

describe('SecretScrubber', () => {
  test('replaces every occurrence of every value with its name', () => {
    const s = new SecretScrubber();
    s.add('API_TOKEN', 'tok-123456');
    s.add('DB_PASS', 'hunter2!');
    assert.equal(s.scrub('a tok-123456 b hunter2! c tok-123456'), 'a [redacted:API_TOKEN] b [redacted:DB_PASS] c [redacted:API_TOKEN]');
  });

  test('the longest value wins when one secret contains another', () => {
    const s = new SecretScrubber();
    s.add('SHORT', 'abcd');
    s.add('LONG', 'abcdefgh');
    assert.equal(s.scrub('x abcdefgh y abcd'), 'x [redacted:LONG] y [redacted:SHORT]');
  });

  test('catches the JSON-escaped form and regex metacharacters', () => {
    const s = new SecretScrubber();
    s.add('Q', 'p"a\\s$s.*');
    const line = JSON.stringify({ msg: 'p"a\\s$s.* leaked' });
    assert.ok(!line.includes('p"a'));
    assert.equal(s.scrub(line), JSON.stringify({ msg: '[redacted:Q] leaked' }));
    assert.equal(s.scrub('raw p"a\\s$s.*'), 'raw [redacted:Q]');
  });

  test('ignores values too short to scrub safely, and leaves text alone when empty', () => {
    const s = new SecretScrubber();
    s.add('TINY', 'ab');
    assert.equal(s.size, 0);
    assert.equal(s.scrub('ab ab'), 'ab ab');
  });

  test('scrubDeep copies objects and arrays, scrubbing every string', () => {
    const s = new SecretScrubber();
    s.add('K', 'sekrit-value');
    const v = { a: 'sekrit-value', b: ['x sekrit-value', 3, null], c: { d: true } };
    assert.deepEqual(s.scrubDeep(v), { a: '[redacted:K]', b: ['x [redacted:K]', 3, null], c: { d: true } });
    assert.equal(v.a, 'sekrit-value', 'the input is not modified');
  });
});

describe('createLogger', () => {
  test('log lines pass through the process scrubber (message, fields, errors)', async () => {
    const canary = `canary-${process.pid}-${Date.now()}`;
    processScrubber.add('LOGGER_CANARY', canary);
    const lines: string[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) });
    const log = createLogger('t', 'info', sink);
    log.info({ detail: `x ${canary}`, err: new Error(`boom ${canary}`) }, `said ${canary}`);
    await new Promise((r) => setImmediate(r));
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes(canary), lines[0]);
    assert.match(lines[0]!, /\[redacted:LOGGER_CANARY\]/);
  });
});

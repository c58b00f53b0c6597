import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseByteRange } from './byte-range.parser.js';

describe('parseByteRange', () => {
  const size = 100;
  const cases: Array<[string | undefined, ReturnType<typeof parseByteRange>]> = [
    [undefined, { kind: 'all' }],
    ['bytes=0-9', { kind: 'range', start: 0, end: 9 }],
    ['bytes=10-10', { kind: 'range', start: 10, end: 10 }],
    ['bytes=90-', { kind: 'range', start: 90, end: 99 }],
    ['bytes=-10', { kind: 'range', start: 90, end: 99 }],
    ['bytes=-1000', { kind: 'range', start: 0, end: 99 }],
    ['bytes=50-1000', { kind: 'range', start: 50, end: 99 }],
    ['Bytes = 5 - 6', { kind: 'range', start: 5, end: 6 }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=100-200', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    // Ignored: served whole with 200.
    ['bytes=9-3', { kind: 'all' }],
    ['bytes=0-1,5-6', { kind: 'all' }],
    ['items=0-1', { kind: 'all' }],
    ['bytes=a-b', { kind: 'all' }],
    ['bytes=-', { kind: 'all' }],
    ['bytes=1.5-2', { kind: 'all' }],
    ['bytes=99999999999999999999-', { kind: 'all' }],
    ['garbage', { kind: 'all' }],
  ];
  for (const [header, expected] of cases) {
    test(`${JSON.stringify(header)} on ${size} bytes -> ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(parseByteRange(header, size), expected);
    });
  }

  test('nothing of an empty blob can be ranged', () => {
    assert.deepEqual(parseByteRange('bytes=0-', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(parseByteRange('bytes=-5', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(parseByteRange(undefined, 0), { kind: 'all' });
  });
});

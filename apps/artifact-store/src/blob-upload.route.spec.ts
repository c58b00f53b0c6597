import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MuseError } from '@muse/contracts';
import { parseNamedWrite } from './blob-upload.route.js';

const params = { runId: 'run_1', name: 'report.json' };

test('a named write takes its fencing token, step, attempt, If-Match and producer from headers', () => {
  const w = parseNamedWrite(params, {
    'x-muse-fencing-token': '7', 'x-muse-step': 'build', 'x-muse-attempt': '2', 'if-match': '"3"',
    'content-type': 'application/json', 'x-muse-tool': 'pytest', 'x-muse-tool-version': '8.1', 'x-muse-schema': 'junit/v1', 'x-muse-agent': 'w1',
  });
  assert.deepEqual(w, {
    runId: 'run_1', project: 'default', stepId: 'build', attempt: 2, agentId: 'w1', fencingToken: 7,
    item: { name: 'report.json', mediaType: 'application/json', tool: 'pytest', toolVersion: '8.1', schema: 'junit/v1', ifMatch: 3 },
  });
  const bare = parseNamedWrite(params, { 'x-muse-fencing-token': '0', 'x-muse-step': 's', 'if-match': '0' });
  assert.equal(bare.attempt, 1);
  assert.equal(bare.item.ifMatch, 0);
  assert.equal(bare.item.mediaType, 'application/octet-stream');
});

test('a missing or malformed header is a 400 that names it', () => {
  const bad = (h: Record<string, string>, header: string) =>
    assert.throws(() => parseNamedWrite(params, h), (e: unknown) => e instanceof MuseError && e.status === 400 && e.message.includes(header));
  bad({ 'x-muse-step': 's' }, 'x-muse-fencing-token');
  bad({ 'x-muse-fencing-token': '-1', 'x-muse-step': 's' }, 'x-muse-fencing-token');
  bad({ 'x-muse-fencing-token': '1' }, 'x-muse-step');
  bad({ 'x-muse-fencing-token': '1', 'x-muse-step': 's', 'x-muse-attempt': '0' }, 'x-muse-attempt');
  bad({ 'x-muse-fencing-token': '1', 'x-muse-step': 's', 'if-match': '*' }, 'if-match');
});

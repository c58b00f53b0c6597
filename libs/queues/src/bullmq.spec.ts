import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { DelayedError, Queue, Worker } from './bullmq.js';

const require = createRequire(import.meta.url);

test('the classes loaded from their own modules are the ones the package root exports, without its other backends', () => {
  const loaded = () => Object.keys(require.cache).filter((f) => f.includes('/bullmq/dist/cjs/'));
  assert.ok(loaded().some((f) => f.endsWith('/classes/worker.js')));
  assert.deepEqual(loaded().filter((f) => /\/postgres\/|\/classes\/(relay|redis-relay-backend|valkey-glide-client|flow-producer)\.js$/.test(f)), []);
  const root = require('bullmq') as typeof import('bullmq');
  assert.equal(Queue, root.Queue);
  assert.equal(Worker, root.Worker);
  assert.equal(DelayedError, root.DelayedError);
});

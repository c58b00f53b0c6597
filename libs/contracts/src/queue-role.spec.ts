import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQueueRole, queueRole, queueRolesFor } from './workflow.schema.js';

test('a step that requires capabilities goes to <role>+<sorted tags>; an agent listens on every subset of its own', () => {
  assert.equal(queueRole('reviewer'), 'reviewer');
  assert.equal(queueRole('reviewer', ['python', 'gpu', 'gpu']), 'reviewer+gpu+python');
  assert.deepEqual(queueRolesFor('reviewer', ['python', 'gpu']), ['reviewer', 'reviewer+gpu', 'reviewer+python', 'reviewer+gpu+python']);
  assert.deepEqual(queueRolesFor('reviewer'), ['reviewer']);
  // Whatever order a step lists its tags in, an agent with all of them listens on that very queue.
  for (const req of [['gpu'], ['python', 'gpu'], ['gpu', 'python']]) assert.ok(queueRolesFor('reviewer', ['gpu', 'python']).includes(queueRole('reviewer', req)));
  assert.ok(!queueRolesFor('reviewer', ['gpu']).includes(queueRole('reviewer', ['gpu', 'python'])));
  assert.deepEqual(parseQueueRole('reviewer+gpu+python'), { role: 'reviewer', requires: ['gpu', 'python'] });
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoles, resolveAgentId } from './agent-identity.js';

describe('resolveAgentId', () => {
  test('uses MUSE_AGENT_ID when set', () => {
    assert.equal(resolveAgentId('worker-7'), 'worker-7');
  });
  test('otherwise <hostname>-<pid>-<4 hex>', () => {
    assert.match(resolveAgentId(undefined, 'box', 123), /^box-123-[0-9a-f]{4}$/);
    assert.match(resolveAgentId('  ', 'box', 123), /^box-123-[0-9a-f]{4}$/);
  });
});

describe('parseRoles', () => {
  test('splits, trims and dedupes', () => {
    assert.deepEqual(parseRoles(' executor, reviewer,executor ,'), ['executor', 'reviewer']);
  });
  test('fails fast naming the variable', () => {
    assert.throws(() => parseRoles(' , '), /MUSE_AGENT_ROLES/);
    assert.throws(() => parseRoles('Executor'), /MUSE_AGENT_ROLES: "Executor"/);
  });
});

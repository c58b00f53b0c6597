import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMuseError } from '@muse/contracts';
import { authRequired, coversProject, hasScope, selectProject, type Principal } from './caller.js';

test('scopes: admin includes write includes read; agent stands alone', () => {
  assert.equal(hasScope(['admin'], 'read'), true);
  assert.equal(hasScope(['admin'], 'write'), true);
  assert.equal(hasScope(['write'], 'read'), true);
  assert.equal(hasScope(['write'], 'admin'), false);
  assert.equal(hasScope(['read'], 'write'), false);
  assert.equal(hasScope(['agent'], 'read'), false);
  assert.equal(hasScope(['admin'], 'agent'), false);
  assert.equal(hasScope(['agent'], 'agent'), true);
  assert.equal(hasScope([], 'read'), false);
});

const exists = (names: string[]) => async (p: string) => names.includes(p);
const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isMuseError(err) ? err.code : String(err);
  }
};

test('selectProject: the header, else the only project, else the default one; a foreign project is "not found" like a missing one', async () => {
  const one: Principal = { principal: 'key:a', projects: ['a'], scopes: ['read'] };
  const two: Principal = { principal: 'key:ab', projects: ['a', 'b'], scopes: ['read'] };
  const all: Principal = { principal: 'key:root', projects: '*', scopes: ['admin'] };
  assert.equal(await selectProject(one, undefined, 'default', exists([])), 'a');
  assert.equal(await selectProject(one, 'a', 'default', exists([])), 'a');
  assert.equal(await codeOf(selectProject(one, 'b', 'default', exists(['b']))), 'MUSE_ERR_PROJECT_NOT_FOUND');
  assert.equal(await codeOf(selectProject(one, 'nope', 'default', exists([]))), 'MUSE_ERR_PROJECT_NOT_FOUND');
  assert.equal(await codeOf(selectProject(two, undefined, 'default', exists([]))), 'MUSE_ERR_PROJECT_REQUIRED');
  assert.equal(await selectProject(two, undefined, 'b', exists([])), 'b');
  assert.equal(await selectProject(all, undefined, 'default', exists([])), 'default');
  assert.equal(await selectProject(all, 'x', 'default', exists(['x'])), 'x');
  assert.equal(await codeOf(selectProject(all, 'y', 'default', exists(['x']))), 'MUSE_ERR_PROJECT_NOT_FOUND');
  assert.equal(coversProject(all, 'anything'), true);
  assert.equal(coversProject(one, 'b'), false);
});

test('the 401 is one fixed error', () => {
  assert.deepEqual(authRequired().toWire(), authRequired().toWire());
  assert.equal(authRequired().status, 401);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promptTemplateHash } from './jobs.schema.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

test("a prompt template's hash is its sha256, the same however often it is asked, past the templates kept too", () => {
  const template = 'Review {{ input.repo }} — ünïcode';
  assert.equal(promptTemplateHash(template), sha256(template));
  assert.equal(promptTemplateHash(template), sha256(template));
  // More templates than are kept: each still hashes right, the first one too once pushed out.
  for (let i = 0; i < 1_500; i++) assert.equal(promptTemplateHash(`step ${i}`), sha256(`step ${i}`));
  assert.equal(promptTemplateHash(template), sha256(template));
  assert.notEqual(promptTemplateHash('a'), promptTemplateHash('b'));
});

/** The README's configuration table and the services' config schemas name the same variables. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SERVICE_CONFIG_SCHEMAS } from '@muse/contracts';
import { documentedConfigVars, documentedMetrics } from './support/docs.js';

test('every configuration variable is documented in the README, and every documented one exists', () => {
  const inCode = new Set(Object.values(SERVICE_CONFIG_SCHEMAS).flatMap((s) => Object.keys(s.shape)));
  const inDocs = new Set(documentedConfigVars());
  assert.deepEqual([...inCode].filter((v) => !inDocs.has(v)).sort(), [], 'variables missing from the README');
  assert.deepEqual([...inDocs].filter((v) => !inCode.has(v)).sort(), [], 'README variables no service reads');
});

test('the README metrics table is well formed', () => {
  const metrics = documentedMetrics();
  assert.ok(metrics.length >= 20, `only ${metrics.length} metrics documented`);
  for (const m of metrics) {
    assert.match(m.name, /^muse_[a-z_]+$/, m.name);
    assert.ok(['counter', 'gauge', 'histogram'].includes(m.type), `${m.name}: type ${m.type}`);
    if (m.type === 'counter') assert.match(m.name, /_total$/, `${m.name}: counters end in _total`);
  }
  assert.equal(new Set(metrics.map((m) => m.name)).size, metrics.length, 'no metric documented twice');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MuseError } from '@muse/contracts';
import { loadScalerConfig, parseScalerConfig } from './scaler-config.js';
import { DEFAULT_POOL_POLICY, policyFor } from './scaling.policy.js';

const SEED_TOML = `
[orchestration.scaling.executor]
min_pool_size = 1
max_pool_size = 8
scale_up_threshold = 10   # work items in queue
scale_down_threshold = 2
idle_timeout_mins = 5

[orchestration.scaling.defaults]
cooldown_secs = 2.5
max_pool_size = 3

[orchestration.scaling.reviewer]
policy = "resource"
cpu_threshold = 0.5
memory_threshold = 0.7
`;

test('the seed example in TOML means what it says', () => {
  const o = parseScalerConfig(SEED_TOML, 'pools.toml');
  assert.deepEqual(policyFor('executor', o), { ...DEFAULT_POOL_POLICY, cooldownMs: 2_500, idleTimeoutMs: 300_000 });
  assert.deepEqual(policyFor('orchestrator', o), { ...DEFAULT_POOL_POLICY, cooldownMs: 2_500, max: 3 });
  assert.deepEqual(policyFor('reviewer', o), { ...DEFAULT_POOL_POLICY, cooldownMs: 2_500, max: 3, kind: 'resource', cpu: 0.5, memory: 0.7 });
});

test('YAML (and JSON) with the same keys', () => {
  const yaml = 'orchestration:\n  scaling:\n    executor:\n      policy: throughput\n      target_items_per_minute: 120\n      min_pool_size: 0\n';
  assert.deepEqual(policyFor('executor', parseScalerConfig(yaml, 'pools.yaml')), { ...DEFAULT_POOL_POLICY, kind: 'throughput', targetPerMinute: 120, min: 0 });
  const json = JSON.stringify({ orchestration: { scaling: { '*': { max_pool_size: 2 } } } });
  assert.equal(policyFor('x', parseScalerConfig(json, 'pools.json')).max, 2);
});

function rejects(text: string, file: string, pattern: RegExp): void {
  assert.throws(
    () => parseScalerConfig(text, file),
    (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_SCALER_CONFIG_INVALID' && pattern.test(err.message),
  );
}

test('bad files are refused with a stable code naming the file and the key', () => {
  rejects('[orchestration.scaling.executor\n', 'p.toml', /p\.toml: not valid TOML/);
  rejects('[orchestration.scaling.executor]\nmax_pool_sise = 3\n', 'p.toml', /orchestration\.scaling\.executor: .*max_pool_sise/);
  rejects('[orchestration.scaling.executor]\npolicy = "magic"\n', 'p.toml', /orchestration\.scaling\.executor\.policy/);
  rejects('[orchestration.scaling.executor]\nmax_pool_size = 0\n', 'p.toml', /max_pool_size/);
  rejects('[orchestration.scaling.executor]\nmin_pool_size = 5\nmax_pool_size = 2\n', 'p.toml', /executor: min must not exceed max/);
  rejects('[orchestration.scaling.Bad_Role]\nmin_pool_size = 1\n', 'p.toml', /orchestration\.scaling\.Bad_Role/);
  rejects('scaling: {}\n', 'p.yaml', /orchestration/);
  assert.throws(() => loadScalerConfig('/nonexistent/pools.toml'), /pools\.toml: cannot read: ENOENT/);
  assert.deepEqual(loadScalerConfig(undefined), {});
});

#!/usr/bin/env node
// Runs the test suite with Node's own test runner on the compiled output.
// `npm test` builds first (pretest). Usage: node scripts/test.mjs [unit|e2e|all]
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const which = process.argv[2] ?? 'all';
const unit = globSync(['libs/*/dist/**/*.spec.js', 'apps/*/dist/**/*.spec.js']);
const e2e = globSync('test/dist/**/*.test.js');
const files = [...(which === 'e2e' ? [] : unit), ...(which === 'unit' ? [] : e2e)].sort();
if (files.length === 0) {
  console.error(`no test files found for "${which}"; did the build run?`);
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=1', '--test-reporter=spec', '--test-timeout=600000', ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);

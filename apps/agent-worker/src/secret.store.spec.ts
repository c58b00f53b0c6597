import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MuseError } from '@muse/contracts';
import { SecretScrubber } from '@muse/telemetry';
import { SecretStore } from './secret.store.js';

describe('SecretStore', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'muse-secrets-'));
    writeFileSync(join(dir, 'FILE_TOKEN'), 'from-the-file\n');
    writeFileSync(join(dir, 'BOTH'), 'file-loses');
    writeFileSync(join(dir, 'not-a-name'), 'ignored-value');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const env = { MUSE_SECRET_ENV_TOKEN: 'from-the-env', MUSE_SECRET_BOTH: 'env-wins', PATH: '/bin' };

  test('resolves from MUSE_SECRET_<NAME> first, then <dir>/<NAME> without its trailing newline', () => {
    const store = new SecretStore({ env, dir, scrubber: new SecretScrubber() });
    assert.deepEqual(store.resolve(['ENV_TOKEN', 'FILE_TOKEN', 'BOTH']), { ENV_TOKEN: 'from-the-env', FILE_TOKEN: 'from-the-file', BOTH: 'env-wins' });
  });

  test('loadAll registers every secret with the scrubber, and only those', () => {
    const scrubber = new SecretScrubber();
    const n = new SecretStore({ env, dir, scrubber }).loadAll();
    assert.equal(n, 3);
    assert.equal(scrubber.scrub('from-the-env from-the-file env-wins file-loses ignored-value /bin'), '[redacted:ENV_TOKEN] [redacted:FILE_TOKEN] [redacted:BOTH] [redacted:BOTH] ignored-value /bin');
  });

  test('a missing secret fails with MUSE_ERR_STEP_SECRET_MISSING naming it, never a value', () => {
    const store = new SecretStore({ env, dir, scrubber: new SecretScrubber() });
    assert.throws(
      () => store.resolve(['ENV_TOKEN', 'NOPE', 'lower']),
      (err: unknown) =>
        err instanceof MuseError &&
        err.code === 'MUSE_ERR_STEP_SECRET_MISSING' &&
        !err.retryable &&
        /NOPE, lower/.test(err.message) &&
        !err.message.includes('from-the-env'),
    );
  });

  test('an unreadable MUSE_SECRETS_DIR fails at load with the path', () => {
    const store = new SecretStore({ env: {}, dir: join(dir, 'absent'), scrubber: new SecretScrubber() });
    assert.throws(() => store.loadAll(), /MUSE_SECRETS_DIR .*absent/);
  });
});

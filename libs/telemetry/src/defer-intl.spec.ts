import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { deferIntl, intlDeferred, restoreIntl } from './defer-intl.js';

const when = new Date(Date.UTC(2026, 11, 4, 13, 5, 9));
const options: Intl.DateTimeFormatOptions = { year: 'numeric', month: '2-digit', day: '2-digit', hour: 'numeric', minute: 'numeric', second: 'numeric', timeZone: 'UTC' };

describe('deferred Intl.DateTimeFormat', () => {
  afterEach(restoreIntl);

  test('a deferred formatter formats, splits and resolves exactly as a real one, with or without new', () => {
    const real = new Intl.DateTimeFormat('en-GB', options);
    deferIntl();
    assert.equal(intlDeferred(), true);
    const deferred = new Intl.DateTimeFormat('en-GB', options);
    const called = Intl.DateTimeFormat('en-GB', options);
    restoreIntl();
    for (const f of [deferred, called]) {
      assert.equal(f.format(when), real.format(when));
      assert.deepEqual(f.formatToParts(when), real.formatToParts(when));
      assert.deepEqual(f.resolvedOptions(), real.resolvedOptions());
      const { format } = f; // the format getter returns a bound function, as the real one does
      assert.equal(format(when), real.format(when));
      assert.equal(Object.prototype.toString.call(f), '[object Intl.DateTimeFormat]');
      assert.ok(f instanceof Intl.DateTimeFormat);
    }
  });

  test('restore puts the real constructor back; deferring twice and restoring twice are harmless', () => {
    const Real = Intl.DateTimeFormat;
    deferIntl();
    deferIntl();
    assert.notEqual(Intl.DateTimeFormat, Real);
    assert.deepEqual(Intl.DateTimeFormat.supportedLocalesOf(['en-GB']), Real.supportedLocalesOf(['en-GB']));
    restoreIntl();
    restoreIntl();
    assert.equal(Intl.DateTimeFormat, Real);
    assert.equal(intlDeferred(), false);
  });

  test('invalid options throw the real RangeError at first use instead of at construction', () => {
    deferIntl();
    const f = new Intl.DateTimeFormat('en-GB', { timeZone: 'Not/A_Zone' });
    restoreIntl();
    assert.throws(() => f.format(when), RangeError);
  });

  test('importing the boot module defers it in a fresh process; nothing else does', () => {
    const boot = fileURLToPath(new URL('./boot.js', import.meta.url));
    const index = fileURLToPath(new URL('./index.js', import.meta.url));
    const probe = (preload: string) =>
      execFileSync(process.execPath, ['--import', preload, '--input-type=module', '-e', `
        import { intlDeferred } from ${JSON.stringify(new URL('./defer-intl.js', import.meta.url).href)};
        process.stdout.write(String(intlDeferred()));`]).toString();
    assert.equal(probe(boot), 'true');
    assert.equal(probe(index), 'false');
  });
});

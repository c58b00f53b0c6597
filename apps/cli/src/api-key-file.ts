/**
 * Where the CLI finds its API key: `--api-key`, else `MUSE_API_KEY`, else the
 * bootstrap key file `muse up` writes (`<MUSE_HOME>/api-key`, mode 0600), so
 * the first command after `npm start` needs no extra step.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { API_KEY_PATTERN } from '@muse/contracts';

/** The cluster's home folder. @default <repo>/.muse */
export function museHome(repoRoot: string): string {
  return process.env.MUSE_HOME ?? join(repoRoot, '.muse');
}

export function apiKeyFile(repoRoot: string): string {
  return join(museHome(repoRoot), 'api-key');
}

/** A fresh key in the API key format: `muse_<12 hex key id>_<43 base64url secret>` (256 random bits). */
export function newApiKey(): string {
  return `muse_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;
}

/** The key the CLI sends, or undefined when none is configured anywhere. */
export function resolveCliApiKey(flag: string | undefined, repoRoot: string): string | undefined {
  if (flag) return flag;
  if (process.env.MUSE_API_KEY) return process.env.MUSE_API_KEY;
  const file = apiKeyFile(repoRoot);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
}

/**
 * The bootstrap admin key for `muse up`: `MUSE_BOOTSTRAP_API_KEY` when set,
 * else the one in the key file, else a new one; written to the key file
 * (readable by this user only) so the CLI finds it.
 */
export function ensureBootstrapKey(repoRoot: string): { key: string; file: string; created: boolean } {
  const file = apiKeyFile(repoRoot);
  const fromEnv = process.env.MUSE_BOOTSTRAP_API_KEY;
  const fromFile = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  const key = fromEnv || (API_KEY_PATTERN.test(fromFile) ? fromFile : '') || newApiKey();
  if (!API_KEY_PATTERN.test(key)) throw new Error(`MUSE_BOOTSTRAP_API_KEY must look like muse_<12 hex>_<43+ base64url>`);
  const created = key !== fromFile;
  if (created) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${key}\n`, { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return { key, file, created };
}

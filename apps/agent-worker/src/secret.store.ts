/**
 * Resolves the secrets a step names, at run time, on the worker: from the
 * worker's environment (`MUSE_SECRET_<NAME>`) or from a file
 * `<MUSE_SECRETS_DIR>/<NAME>` (one trailing newline dropped), the variable
 * first. Workflow definitions, events and job payloads carry only names.
 *
 * Every value it sees is registered with the scrubber, so it is removed from
 * step outputs, artifacts, prompts and log lines. Files are read again on
 * every resolve: a rotated secret file is used (and scrubbed) from the next
 * step on, without a restart.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MuseError, SECRET_NAME_PATTERN } from '@muse/contracts';
import type { SecretScrubber } from '@muse/telemetry';

/** Prefix of the environment variables that hold secrets. */
export const SECRET_ENV_PREFIX = 'MUSE_SECRET_';

export interface SecretStoreOptions {
  env: Record<string, string | undefined>;
  /** MUSE_SECRETS_DIR; unset = environment only. */
  dir?: string | undefined;
  scrubber: SecretScrubber;
}

export class SecretStore {
  constructor(private readonly opts: SecretStoreOptions) {}

  /** Registers every secret visible now with the scrubber; returns how many there are. Called at start, so even steps that name no secret have their output scrubbed. */
  loadAll(): number {
    const names = new Set<string>();
    for (const [k, v] of Object.entries(this.opts.env)) {
      const name = k.slice(SECRET_ENV_PREFIX.length);
      if (k.startsWith(SECRET_ENV_PREFIX) && v !== undefined && SECRET_NAME_PATTERN.test(name)) {
        this.opts.scrubber.add(name, v);
        names.add(name);
      }
    }
    if (this.opts.dir !== undefined) {
      let files: string[] = [];
      try {
        files = readdirSync(this.opts.dir);
      } catch (err) {
        throw new MuseError('MUSE_ERR_CONFIG_INVALID', `MUSE_SECRETS_DIR ${this.opts.dir} cannot be read: ${(err as Error).message}`, { cause: err });
      }
      for (const f of files) {
        if (!SECRET_NAME_PATTERN.test(f)) continue;
        const v = this.readFile(f);
        if (v !== undefined) {
          this.opts.scrubber.add(f, v);
          names.add(f);
        }
      }
    }
    return names.size;
  }

  /** The values of `names`, as environment variables named after them; fails the step naming every missing one (never a value). */
  resolve(names: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {};
    const missing: string[] = [];
    for (const name of names) {
      const v = SECRET_NAME_PATTERN.test(name) ? (this.opts.env[SECRET_ENV_PREFIX + name] ?? this.readFile(name)) : undefined;
      if (v === undefined) missing.push(name);
      else {
        this.opts.scrubber.add(name, v);
        out[name] = v;
      }
    }
    if (missing.length > 0) {
      throw new MuseError('MUSE_ERR_STEP_SECRET_MISSING', `secret ${missing.join(', ')} is not configured on this worker (set ${SECRET_ENV_PREFIX}<NAME> or a file in MUSE_SECRETS_DIR)`, {
        details: { missing },
      });
    }
    return out;
  }

  private readFile(name: string): string | undefined {
    if (this.opts.dir === undefined) return undefined;
    try {
      return readFileSync(join(this.opts.dir, name), 'utf8').replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  }
}

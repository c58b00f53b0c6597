/**
 * Turns a request's credential into a Caller, for REST (the auth hook) and
 * the WebSocket handshake alike, and creates the bootstrap admin key and the
 * default project on first start.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ALL_PROJECTS, SCOPES, type GatewayConfig } from '@muse/contracts';
import { LOGGER, type Logger } from '@muse/telemetry';
import { authRequired, selectProject, type Caller, type Principal } from '../caller/caller.js';
import { GATEWAY_CONFIG } from '../gateway.tokens.js';
import { checkApiKey, generateApiKey, hashApiKey, parseApiKey } from './api-key.js';
import { ApiKeyStore } from './api-key-store.service.js';
import { JwtVerifier } from './jwt-verifier.js';

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return m?.[1];
}

@Injectable()
export class Authenticator implements OnApplicationBootstrap {
  private readonly jwt: JwtVerifier | null;

  constructor(
    @Inject(ApiKeyStore) private readonly keys: ApiKeyStore,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.jwt = JwtVerifier.fromConfig(config);
  }

  /** The principal behind a bearer token; the same 401 for every way a token can be bad. */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (!token) throw authRequired();
    const parsed = parseApiKey(token);
    if (parsed) {
      const stored = await this.keys.get(parsed.id);
      if (!checkApiKey(stored, token, new Date()) || !stored) throw authRequired();
      return { principal: `key:${stored.id}`, projects: stored.projects.includes(ALL_PROJECTS) ? ALL_PROJECTS : stored.projects, scopes: stored.scopes };
    }
    if (token.startsWith('muse_') || !this.jwt) throw authRequired();
    const p = await this.jwt.verify(token);
    if (!p) throw authRequired();
    return p;
  }

  /** The caller of a request: its principal and the project it acts in (`Muse-Project` header). */
  async resolve(token: string | undefined, projectHeader: string | undefined): Promise<Caller> {
    const p = await this.authenticate(token);
    const project = await selectProject(p, projectHeader, this.config.MUSE_DEFAULT_PROJECT, (name) => this.keys.projectExists(name));
    return { ...p, project };
  }

  async onApplicationBootstrap(): Promise<void> {
    const at = new Date().toISOString();
    await this.keys.createProject({ name: this.config.MUSE_DEFAULT_PROJECT, createdAt: at, createdBy: 'bootstrap' });
    const configured = this.config.MUSE_BOOTSTRAP_API_KEY;
    if (configured) {
      const parsed = parseApiKey(configured)!;
      // Never overwrites: a bootstrap key that was revoked stays revoked across restarts.
      await this.keys.create({ id: parsed.id, name: 'bootstrap', projects: [ALL_PROJECTS], scopes: [...SCOPES], hash: hashApiKey(configured), createdAt: at, createdBy: 'bootstrap' });
      await this.keys.claimBootstrap();
      return;
    }
    // Only the first start of the first replica generates one; later starts find keys (or the marker).
    if ((await this.keys.count()) > 0 || !(await this.keys.claimBootstrap())) return;
    const { id, key } = generateApiKey();
    const file = resolve(this.config.MUSE_BOOTSTRAP_API_KEY_FILE);
    try {
      // The file first: a key stored but never written down would lock everyone out.
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${key}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
      await this.keys.create({ id, name: 'bootstrap', projects: [ALL_PROJECTS], scopes: [...SCOPES], hash: hashApiKey(key), createdAt: at, createdBy: 'bootstrap' });
    } catch (err) {
      await this.keys.releaseBootstrap();
      throw err;
    }
    this.logger.warn({ file, keyId: id }, `generated the bootstrap admin API key; it is in ${file} (readable by this user only)`);
  }
}

/**
 * JWT bearer tokens, verified with jose against a JWKS (a URL, fetched and
 * cached by `createRemoteJWKSet`, or a local file). The issuer and audience
 * are checked when configured; two claims give the projects and the scopes.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { JWTPayload, JWTVerifyGetKey, createLocalJWKSet } from 'jose';
import { PROJECT_NAME_PATTERN, SCOPES, type GatewayConfig, type Scope } from '@muse/contracts';
import type { Principal } from '../caller/caller.js';

const require = createRequire(import.meta.url);
/** jose, loaded once JWTs are configured: a gateway that takes API keys only does without it (~0.8 MB of heap). */
const jose = (): typeof import('jose') => require('jose') as typeof import('jose');

export interface JwtPolicy {
  issuer?: string;
  audience?: string;
  projectsClaim: string;
  scopesClaim: string;
}

export class JwtVerifier {
  private readonly jwtVerify = jose().jwtVerify;

  constructor(
    private readonly keys: JWTVerifyGetKey,
    private readonly policy: JwtPolicy,
  ) {}

  /** null when neither a JWKS URL nor a JWKS file is configured: JWTs are then refused. */
  static fromConfig(c: GatewayConfig): JwtVerifier | null {
    let keys: JWTVerifyGetKey;
    if (c.MUSE_JWT_JWKS_URL) keys = jose().createRemoteJWKSet(new URL(c.MUSE_JWT_JWKS_URL));
    else if (c.MUSE_JWT_JWKS_FILE) keys = jose().createLocalJWKSet(JSON.parse(readFileSync(c.MUSE_JWT_JWKS_FILE, 'utf8')) as Parameters<typeof createLocalJWKSet>[0]);
    else return null;
    return new JwtVerifier(keys, {
      ...(c.MUSE_JWT_ISSUER !== undefined ? { issuer: c.MUSE_JWT_ISSUER } : {}),
      ...(c.MUSE_JWT_AUDIENCE !== undefined ? { audience: c.MUSE_JWT_AUDIENCE } : {}),
      projectsClaim: c.MUSE_JWT_PROJECTS_CLAIM,
      scopesClaim: c.MUSE_JWT_SCOPES_CLAIM,
    });
  }

  /** The principal of a valid token, or null for any invalid one (signature, expiry, issuer, audience, claims). */
  async verify(token: string): Promise<Principal | null> {
    let payload: JWTPayload;
    try {
      ({ payload } = await this.jwtVerify(token, this.keys, {
        ...(this.policy.issuer !== undefined ? { issuer: this.policy.issuer } : {}),
        ...(this.policy.audience !== undefined ? { audience: this.policy.audience } : {}),
      }));
    } catch {
      return null;
    }
    return principalFromClaims(payload, this.policy);
  }
}

/**
 * Projects: a string or an array of project names (no wildcard: a JWT never
 * spans every project). Scopes: a space-separated string or an array; names
 * that are not Muse scopes are ignored. No project or no scope = no access.
 */
export function principalFromClaims(payload: JWTPayload, policy: Pick<JwtPolicy, 'projectsClaim' | 'scopesClaim'>): Principal | null {
  const rawProjects = payload[policy.projectsClaim];
  const projects = (typeof rawProjects === 'string' ? [rawProjects] : Array.isArray(rawProjects) ? rawProjects : []).filter(
    (p): p is string => typeof p === 'string' && PROJECT_NAME_PATTERN.test(p),
  );
  const rawScopes = payload[policy.scopesClaim];
  const scopes = (typeof rawScopes === 'string' ? rawScopes.split(/\s+/) : Array.isArray(rawScopes) ? rawScopes : []).filter((s): s is Scope =>
    (SCOPES as readonly unknown[]).includes(s),
  );
  if (projects.length === 0 || scopes.length === 0 || typeof payload.sub !== 'string' || payload.sub === '') return null;
  return { principal: `jwt:${payload.sub}`, projects: [...new Set(projects)], scopes: [...new Set(scopes)] };
}

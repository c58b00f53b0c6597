import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayConfigSchema } from '@muse/contracts';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { handshakeCredentials } from '../stream/stream.gateway.js';
import { auditOutcome } from './audit-log.service.js';
import { bearerToken } from './authenticator.service.js';
import { JwtVerifier, principalFromClaims } from './jwt-verifier.js';
import { isPublicPath } from './scope.decorator.js';

test('bearerToken takes only `Bearer <token>`', () => {
  assert.equal(bearerToken('Bearer abc'), 'abc');
  assert.equal(bearerToken('bearer  abc '), 'abc');
  assert.equal(bearerToken('Basic abc'), undefined);
  assert.equal(bearerToken('Bearer'), undefined);
  assert.equal(bearerToken('Bearer a b'), undefined);
  assert.equal(bearerToken(undefined), undefined);
});

test('the WebSocket handshake takes the header first, else ?access_token= and ?project=', () => {
  const req = (url: string, headers: Record<string, string> = {}) => ({ url, headers }) as unknown as IncomingMessage;
  assert.deepEqual(handshakeCredentials(req('/v1/stream?access_token=k1&project=p')), { token: 'k1', project: 'p' });
  assert.deepEqual(handshakeCredentials(req('/v1/stream?access_token=k1', { authorization: 'Bearer k2', 'muse-project': 'q' })), { token: 'k2', project: 'q' });
  assert.deepEqual(handshakeCredentials(req('/v1/stream')), { token: undefined, project: undefined });
});

test('audit: every mutation and every denied request; reads that succeed or fail normally are not recorded', () => {
  assert.equal(auditOutcome('POST', 202, undefined), 'allowed');
  assert.equal(auditOutcome('DELETE', 200, undefined), 'allowed');
  assert.equal(auditOutcome('POST', 400, 'MUSE_ERR_REQUEST_INVALID'), 'failed');
  assert.equal(auditOutcome('POST', 403, 'MUSE_ERR_AUTH_FORBIDDEN'), 'denied');
  assert.equal(auditOutcome('GET', 401, 'MUSE_ERR_AUTH_REQUIRED'), 'denied');
  assert.equal(auditOutcome('GET', 429, 'MUSE_ERR_RATE_LIMITED'), 'denied');
  assert.equal(auditOutcome('GET', 404, 'MUSE_ERR_PROJECT_NOT_FOUND'), 'denied');
  assert.equal(auditOutcome('GET', 200, undefined), null);
  assert.equal(auditOutcome('GET', 404, 'MUSE_ERR_RUN_NOT_FOUND'), null);
});

test('public paths: health, metrics and the docs only, with or without a query', () => {
  for (const p of ['/health/live', '/health/ready?x=1', '/metrics', '/docs', '/docs/openapi.json']) assert.equal(isPublicPath(p), true, p);
  for (const p of ['/v1/runs', '/docs/../v1/runs', '/metrics/x', '/health', '/']) assert.equal(isPublicPath(p), false, p);
});

test('JWT claims: projects (string or array) and scopes (space-separated or array); unknown scopes ignored; none = no access', () => {
  const policy = { projectsClaim: 'muse_projects', scopesClaim: 'scope' };
  assert.deepEqual(principalFromClaims({ sub: 'u', muse_projects: 'a', scope: 'read write other' }, policy), { principal: 'jwt:u', projects: ['a'], scopes: ['read', 'write'] });
  assert.deepEqual(principalFromClaims({ sub: 'u', muse_projects: ['a', 'b', '*', 'Bad!'], scope: ['admin'] }, policy)?.projects, ['a', 'b'], 'no wildcard from a JWT');
  assert.equal(principalFromClaims({ sub: 'u', scope: 'read' }, policy), null);
  assert.equal(principalFromClaims({ sub: 'u', muse_projects: 'a', scope: 'other' }, policy), null);
  assert.equal(principalFromClaims({ muse_projects: 'a', scope: 'read' }, policy), null, 'a token without a subject');
});

test('JwtVerifier checks signature, issuer, audience and expiry', async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }] });
  const v = new JwtVerifier(jwks, { issuer: 'iss', audience: 'aud', projectsClaim: 'muse_projects', scopesClaim: 'scope' });
  const sign = (key: typeof privateKey, o: { iss?: string; aud?: string; exp?: string } = {}) =>
    new SignJWT({ muse_projects: ['a'], scope: 'read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k' })
      .setSubject('u')
      .setIssuer(o.iss ?? 'iss')
      .setAudience(o.aud ?? 'aud')
      .setExpirationTime(o.exp ?? '1m')
      .sign(key);
  assert.deepEqual(await v.verify(await sign(privateKey)), { principal: 'jwt:u', projects: ['a'], scopes: ['read'] });
  assert.equal(await v.verify(await sign(other.privateKey)), null);
  assert.equal(await v.verify(await sign(privateKey, { iss: 'x' })), null);
  assert.equal(await v.verify(await sign(privateKey, { aud: 'x' })), null);
  assert.equal(await v.verify(await sign(privateKey, { exp: '-10s' })), null);
  assert.equal(await v.verify('not.a.jwt'), null);
});

test('JwtVerifier.fromConfig fetches a JWKS URL (jose createRemoteJWKSet) and maps the configured claims', async () => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const body = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'r1', alg: 'RS256' }] });
  let fetched = 0;
  const server = createServer((_req, res) => {
    fetched++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const v = JwtVerifier.fromConfig(GatewayConfigSchema.parse({ MUSE_JWT_JWKS_URL: url, MUSE_JWT_PROJECTS_CLAIM: 'tenant', MUSE_JWT_SCOPES_CLAIM: 'perms' }))!;
    const token = await new SignJWT({ tenant: 'acme', perms: ['write'] }).setProtectedHeader({ alg: 'RS256', kid: 'r1' }).setSubject('ci').setExpirationTime('1m').sign(privateKey);
    assert.deepEqual(await v.verify(token), { principal: 'jwt:ci', projects: ['acme'], scopes: ['write'] });
    assert.ok(fetched >= 1);
  } finally {
    server.close();
  }
  assert.equal(JwtVerifier.fromConfig(GatewayConfigSchema.parse({})), null, 'no JWKS configured: no JWTs');
});

#!/usr/bin/env node
// Writes a nats-server configuration with one user per Muse service, each
// with least-privilege permissions for the namespace (see
// libs/messaging/src/nats-permissions.ts). Passwords are references to
// environment variables of the nats-server process, so the file holds no secret.
//
//   node scripts/nats-config.mjs [--namespace muse] [--out FILE] [--store-dir DIR] [--http-port 8222]
//        [--credential ROLE[:GEN] ...] [--nkey ROLE=U... ...] [--tls-cert F --tls-key F [--tls-ca F] [--tls-verify]]
//
// ROLE is a service (gateway, coordinator, agent-worker, artifact-store,
// observability, scaler) or admin; GEN names a second credential of the role
// for rotation: `--credential gateway:2` adds user `muse-gateway-2` whose
// password is $MUSE_NATS_PASSWORD_GATEWAY_2. Without --credential: every
// role once (`muse-<role>`, $MUSE_NATS_PASSWORD_<ROLE>). `--nkey coordinator=UABC...` makes that
// role's user an nkey (its public key; the service reads its seed from NATS_NKEY_SEED_FILE) instead
// of a password. Run `npm run build` first.
// infra/nats/nats-server.conf is `--store-dir /data --http-port 8222`.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { museNames } from '@muse/contracts';
import { NATS_SERVICE_ROLES, natsServerConfig } from '@muse/messaging';

const { values } = parseArgs({
  options: {
    namespace: { type: 'string', default: 'muse' },
    out: { type: 'string' },
    'store-dir': { type: 'string' },
    'http-port': { type: 'string' },
    port: { type: 'string' },
    credential: { type: 'string', multiple: true },
    nkey: { type: 'string', multiple: true },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-ca': { type: 'string' },
    'tls-verify': { type: 'boolean', default: false },
  },
});

const roles = [...NATS_SERVICE_ROLES, 'admin'];
const credentials = values.credential ?? roles;
const nkeys = new Map((values.nkey ?? []).map((n) => {
  const [role, key] = n.split('=');
  if (!roles.includes(role)) throw new Error(`--nkey ${n}: unknown role "${role}" (one of ${roles.join(', ')})`);
  if (!/^U[A-Z2-7]{55}$/.test(key ?? '')) throw new Error(`--nkey ${n}: expected a user public nkey (U followed by 55 base32 characters)`);
  return [role, key];
}));
const users = credentials.map((c) => {
  const [role, gen] = c.split(':');
  if (!roles.includes(role)) throw new Error(`--credential ${c}: unknown role "${role}" (one of ${roles.join(', ')})`);
  if (gen !== undefined && !/^[a-z0-9]+$/.test(gen)) throw new Error(`--credential ${c}: the generation uses [a-z0-9]+`);
  if (gen === undefined && nkeys.has(role)) return { role, nkey: nkeys.get(role) };
  const suffix = gen === undefined ? '' : `-${gen}`;
  const envName = `MUSE_NATS_PASSWORD_${`${role}${suffix}`.toUpperCase().replace(/-/g, '_')}`;
  return { role, user: `muse-${role}${suffix}`, password: `$${envName}` };
});
if (values['tls-cert'] && !values['tls-key']) throw new Error('--tls-cert needs --tls-key');

const text = natsServerConfig({
  names: museNames(values.namespace),
  users,
  ...(values.port ? { port: Number(values.port) } : {}),
  ...(values['http-port'] ? { httpPort: Number(values['http-port']) } : {}),
  ...(values['store-dir'] ? { storeDir: values['store-dir'] } : {}),
  ...(values['tls-cert']
    ? { tls: { cert: values['tls-cert'], key: values['tls-key'], ...(values['tls-ca'] ? { ca: values['tls-ca'] } : {}), verify: values['tls-verify'] } }
    : {}),
});
if (values.out) writeFileSync(values.out, text);
else process.stdout.write(text);

/**
 * Static checks of the container set-up against the code: docker-compose.yml,
 * the Dockerfile, Prometheus' scrape config and Grafana's provisioning. No
 * Docker engine needed — it parses the files. Each service's environment is
 * checked against its zod config schema in `@muse/contracts`, so a renamed or
 * removed variable, a changed default port or a new service fails here first.
 *
 * Runs from the repo root (`npm test`, or
 * `tsc -b test && node --test test/dist/compose.test.js`).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { documentedMetrics } from './support/docs.js';
import { promqlMetricNames } from './support/promql.js';
import { SERVICE_CONFIG_SCHEMAS, SERVICE_NAMES, SERVICE_PORT_VARS, museNames, type ServiceName } from '@muse/contracts';
import { NATS_SERVICE_ROLES, natsServerConfig } from '@muse/messaging';
import { SERVICE_ENV_DEFAULTS, SERVICE_NODE_FLAGS } from '@muse/cluster';

const ROOT = process.cwd();
const COMPOSE_FILE = 'docker-compose.yml';
const NATS_CONFIG_FILE = 'infra/nats/nats-server.conf';
const PROMETHEUS_FILE = 'infra/prometheus/prometheus.yml';
const GRAFANA_DATASOURCES_DIR = 'infra/grafana/provisioning/datasources';
const GRAFANA_DASHBOARD_PROVIDERS_DIR = 'infra/grafana/provisioning/dashboards';
const GRAFANA_DASHBOARDS_DIR = 'infra/grafana/dashboards';

/**
 * Metric names the services export, as documented in the README (the
 * end-to-end test checks that table against the services' real /metrics).
 * Dashboards may query only these, their histogram series and Node's defaults.
 */
const DOCUMENTED = documentedMetrics();
const SERVICE_METRICS: readonly string[] = DOCUMENTED.map((m) => m.name);
const SERVICE_HISTOGRAMS: readonly string[] = DOCUMENTED.filter((m) => m.type === 'histogram').map((m) => m.name);
/** prom-client's default Node metrics, registered by `MuseMetrics` under this prefix. */
const SERVICE_METRIC_PREFIXES: readonly string[] = ['muse_process_'];
/** Series Prometheus itself writes for every target (not exported by the services). */
const PROMETHEUS_SERIES: readonly string[] = ['up'];

/** The one service compose may scale (`--scale agent-worker=N`); its host port is left ephemeral. */
const SCALABLE: ReadonlySet<string> = new Set(['agent-worker']);

// ---------------------------------------------------------------------------
// Reading the files

type Obj = Record<string, unknown>;

function readText(path: string): string {
  const full = join(ROOT, path);
  assert.ok(existsSync(full), `${path} is missing (looked in ${ROOT}; run the tests from the repo root)`);
  return readFileSync(full, 'utf8');
}

function readYaml(path: string): Obj {
  // `merge: true` resolves `<<: *anchor` the way Compose does.
  const doc: unknown = parse(readText(path), { merge: true });
  assert.ok(isObj(doc), `${path} is not a YAML mapping`);
  return doc;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asObj(v: unknown, what: string): Obj {
  assert.ok(isObj(v), `${what} should be a mapping, got ${JSON.stringify(v)}`);
  return v;
}

/** Compose interpolation with an empty shell environment: `${X:-d}` and `${X-d}` give d, `${X}` gives '', `$$` gives `$`. */
function interpolate(value: string): string {
  return value
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name: string, def: string | undefined) => def ?? '')
    .replace(/\$\$/g, '$');
}

/** Compose `environment` as a map (it may be a map or a list of `K=V`), interpolated. */
function environmentOf(service: Obj): Record<string, string> {
  const env = service.environment;
  const out: Record<string, string> = {};
  if (env === undefined || env === null) return out;
  if (Array.isArray(env)) {
    for (const item of env) {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq > 0) out[s.slice(0, eq)] = interpolate(s.slice(eq + 1));
    }
    return out;
  }
  for (const [k, v] of Object.entries(asObj(env, 'environment'))) {
    if (v !== null && v !== undefined) out[k] = interpolate(String(v));
  }
  return out;
}

interface PortMapping {
  target: number;
  published?: number;
  hostIp?: string;
}

/** Compose `ports` entries, short (`"127.0.0.1:3000:3000"`, `"3000"`) or long (`{target, published}`) syntax. */
function portsOf(service: Obj): PortMapping[] {
  const ports = service.ports;
  if (!Array.isArray(ports)) return [];
  return ports.map((p): PortMapping => {
    if (typeof p === 'number') return { target: p };
    if (isObj(p)) {
      return {
        target: Number(p.target),
        published: p.published === undefined ? undefined : Number(p.published),
        hostIp: p.host_ip === undefined ? undefined : String(p.host_ip),
      };
    }
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    const target = Number(parts.at(-1));
    if (parts.length === 1) return { target };
    const published = parts.at(-2) === '' ? undefined : Number(parts.at(-2));
    return { target, published, hostIp: parts.length > 2 ? parts.slice(0, -2).join(':') : undefined };
  });
}

interface VolumeMount {
  source: string;
  target: string;
}

function volumesOf(service: Obj): VolumeMount[] {
  const vols = service.volumes;
  if (!Array.isArray(vols)) return [];
  return vols.map((v): VolumeMount => {
    if (isObj(v)) return { source: String(v.source ?? ''), target: String(v.target) };
    const [source = '', target = ''] = String(v).split(':');
    return { source, target };
  });
}

/** A service's `command` as one list of words. */
function commandOf(service: Obj): string[] {
  const cmd = service.command;
  if (Array.isArray(cmd)) return cmd.map(String);
  if (typeof cmd === 'string') return cmd.split(/\s+/).filter(Boolean);
  return [];
}

function flagValue(words: string[], ...flags: string[]): string | undefined {
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    for (const f of flags) {
      if (w === f) return words[i + 1];
      if (w.startsWith(`${f}=`)) return w.slice(f.length + 1);
    }
  }
  return undefined;
}

/** The text of the nats config file the command names with -c, read from the repo through its bind mount; '' without one. */
function natsConfigText(cmd: string[]): string {
  const path = flagValue(cmd, '-c', '--config');
  if (!path) return '';
  const mount = volumesOf(service('nats')).find((v) => v.target === path);
  return mount?.source.startsWith('./') ? readText(mount.source.slice(2)) : '';
}

function healthcheckText(service: Obj): string {
  const hc = service.healthcheck;
  if (!isObj(hc)) return '';
  return Array.isArray(hc.test) ? hc.test.map(String).join(' ') : String(hc.test ?? '');
}

/** The default a zod schema gives a variable when it is unset. */
function schemaDefault(name: ServiceName, key: string): unknown {
  const field = (SERVICE_CONFIG_SCHEMAS[name].shape as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>)[key];
  assert.ok(field, `${key} is not in the ${name} config schema`);
  const res = field.safeParse(undefined);
  return res.success ? res.data : undefined;
}

function isLoopbackUrl(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  try {
    const host = new URL(v).hostname;
    return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// PromQL: the metric names an expression reads

// promqlMetricNames: test/support/promql.ts (shared with test/e2e/dashboards.test.ts).

function isKnownMetric(name: string): boolean {
  if (PROMETHEUS_SERIES.includes(name) || SERVICE_METRICS.includes(name)) return true;
  if (SERVICE_METRIC_PREFIXES.some((p) => name.startsWith(p))) return true;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && SERVICE_HISTOGRAMS.includes(base);
}

function collectExprs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) {
    for (const n of node) collectExprs(n, out);
  } else if (isObj(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'expr' && typeof v === 'string') out.push(v);
      else collectExprs(v, out);
    }
  }
  return out;
}

function collectDatasourceUids(node: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(node)) {
    for (const n of node) collectDatasourceUids(n, out);
  } else if (isObj(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'datasource' && isObj(v) && typeof v.uid === 'string') {
        // Grafana's own built-in source (annotations: "-- Grafana --", type grafana) always exists.
        if (v.type !== 'grafana') out.add(v.uid);
      } else collectDatasourceUids(v, out);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------

const compose = readYaml(COMPOSE_FILE);
const services = asObj(compose.services, `${COMPOSE_FILE} services`);
const namedVolumes = new Set(Object.keys(isObj(compose.volumes) ? compose.volumes : {}));

function service(name: string): Obj {
  assert.ok(name in services, `${COMPOSE_FILE} has no "${name}" service (services: ${Object.keys(services).join(', ')})`);
  return asObj(services[name], `${COMPOSE_FILE} services.${name}`);
}

function defaultPort(name: ServiceName): number {
  const port = schemaDefault(name, SERVICE_PORT_VARS[name]);
  assert.equal(typeof port, 'number', `${name}: ${SERVICE_PORT_VARS[name]} has no numeric default in its schema`);
  return port as number;
}

describe('docker-compose.yml: Muse services', () => {
  test('every service in SERVICE_NAMES is in the compose file, and nothing else builds from the repo', () => {
    for (const name of SERVICE_NAMES) service(name);
    const builtHere = Object.entries(services)
      .filter(([, s]) => isObj(s) && s.build !== undefined)
      .map(([n]) => n);
    const extra = builtHere.filter((n) => !(SERVICE_NAMES as string[]).includes(n));
    assert.deepEqual(extra, [], `compose builds services that are not in SERVICE_NAMES: ${extra.join(', ')}`);
  });

  for (const name of SERVICE_NAMES) {
    describe(name, () => {
      const schema = SERVICE_CONFIG_SCHEMAS[name];
      const portVar = SERVICE_PORT_VARS[name];

      test('builds from the repo Dockerfile with SERVICE set to its app folder, which has a main.ts', () => {
        const svc = service(name);
        const build = svc.build;
        if (typeof build === 'string') {
          assert.fail(`${name}: build is "${build}"; it needs the long form to pass args: {SERVICE: ${name}}`);
        }
        const b = asObj(build, `${name}.build`);
        assert.equal(b.context, '.', `${name}: build.context is ${JSON.stringify(b.context)}, expected "." (the repo root)`);
        assert.equal(b.dockerfile ?? 'Dockerfile', 'Dockerfile', `${name}: build.dockerfile is ${JSON.stringify(b.dockerfile)}, expected "Dockerfile"`);
        let serviceArg: unknown;
        if (Array.isArray(b.args)) {
          const entry = b.args.map(String).find((a) => a.startsWith('SERVICE='));
          serviceArg = entry?.slice('SERVICE='.length);
        } else if (isObj(b.args)) {
          serviceArg = b.args.SERVICE;
        }
        assert.equal(serviceArg, name, `${name}: build.args.SERVICE is ${JSON.stringify(serviceArg)}, expected "${name}"`);
        const main = `apps/${name}/src/main.ts`;
        assert.ok(existsSync(join(ROOT, main)), `${name}: ${main} does not exist, so the image would have no apps/${name}/dist/main.js to run`);
      });

      test('environment uses only variables of its config schema and parses with it', () => {
        const env = environmentOf(service(name));
        const known = Object.keys(schema.shape);
        const unknown = Object.keys(env).filter((k) => !known.includes(k));
        assert.deepEqual(unknown, [], `${name}: environment sets ${unknown.join(', ')}, which ${name}'s config schema does not read (it reads ${known.join(', ')})`);
        const res = schema.safeParse(env);
        assert.ok(
          res.success,
          `${name}: environment does not parse with its config schema: ${res.success ? '' : res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      });

      test('reaches NATS, Redis and other services by their compose names and binds to all interfaces', () => {
        const env = environmentOf(service(name));
        assert.equal(env.NATS_URL, 'nats://nats:4222', `${name}: NATS_URL is ${JSON.stringify(env.NATS_URL)}, expected nats://nats:4222`);
        // Redis with its ACL user and password (checked against the redis command below).
        const redisUrl = new URL(env.REDIS_URL ?? '');
        assert.equal(`${redisUrl.protocol}//${redisUrl.host}`, 'redis://redis:6379', `${name}: REDIS_URL is ${JSON.stringify(env.REDIS_URL)}, expected redis://<user>:<password>@redis:6379`);
        assert.equal(env.HOST, '0.0.0.0', `${name}: HOST is ${JSON.stringify(env.HOST)}; in a container it must be 0.0.0.0 or nothing outside can reach the port`);
        // Any URL whose schema default is loopback would point the container at itself.
        for (const key of Object.keys(schema.shape)) {
          if (!key.endsWith('_URL') || !isLoopbackUrl(schemaDefault(name, key))) continue;
          assert.ok(key in env, `${name}: ${key} is unset, so it defaults to ${String(schemaDefault(name, key))}, the container itself`);
          assert.ok(!isLoopbackUrl(env[key]), `${name}: ${key} is ${env[key]}, a loopback address inside the container`);
        }
        if ('MUSE_ARTIFACT_STORE_URL' in schema.shape) {
          const url = `http://artifact-store:${defaultPort('artifact-store')}`;
          assert.equal(env.MUSE_ARTIFACT_STORE_URL, url, `${name}: MUSE_ARTIFACT_STORE_URL is ${JSON.stringify(env.MUSE_ARTIFACT_STORE_URL)}, expected ${url}`);
        }
      });

      test('port variable equals the schema default and is published on the same port', () => {
        const svc = service(name);
        const port = defaultPort(name);
        const env = environmentOf(svc);
        assert.equal(env[portVar], String(port), `${name}: ${portVar} is ${JSON.stringify(env[portVar])}, expected "${port}" (the schema default)`);
        const mapping = portsOf(svc).find((p) => p.target === port);
        assert.ok(mapping, `${name}: no ports entry for container port ${port} (ports: ${JSON.stringify(svc.ports)})`);
        if (SCALABLE.has(name)) {
          assert.ok(
            mapping.published === undefined || mapping.published === port,
            `${name}: container port ${port} is published on host port ${mapping.published}; expected ${port} or an ephemeral host port`,
          );
          assert.equal(svc.container_name, undefined, `${name}: container_name is set, so compose cannot scale it`);
        } else {
          assert.equal(mapping.published, port, `${name}: container port ${port} is published on host port ${mapping.published}, expected ${port}`);
        }
      });

      test('healthcheck calls /health/ready on its port', () => {
        const svc = service(name);
        const port = defaultPort(name);
        const hc = healthcheckText(svc);
        assert.ok(hc, `${name}: no healthcheck`);
        assert.ok(hc.includes(`:${port}/health/ready`), `${name}: healthcheck "${hc}" does not call :${port}/health/ready`);
      });

      test('waits for healthy NATS and Redis', () => {
        const deps = asObj(service(name).depends_on, `${name}.depends_on (must be the long form with conditions)`);
        for (const dep of ['nats', 'redis']) {
          const d = asObj(deps[dep], `${name}.depends_on.${dep}`);
          assert.equal(d.condition, 'service_healthy', `${name}: depends_on.${dep}.condition is ${JSON.stringify(d.condition)}, expected service_healthy`);
        }
      });
    });
  }

  test('artifact-store keeps artifacts on a named volume at MUSE_ARTIFACT_DIR', () => {
    const svc = service('artifact-store');
    const dir = environmentOf(svc).MUSE_ARTIFACT_DIR;
    assert.ok(dir?.startsWith('/'), `artifact-store: MUSE_ARTIFACT_DIR is ${JSON.stringify(dir)}; set it to an absolute path backed by a volume`);
    const mount = volumesOf(svc).find((v) => v.target === dir);
    assert.ok(mount, `artifact-store: no volume mounted at MUSE_ARTIFACT_DIR (${dir})`);
    assert.ok(namedVolumes.has(mount.source), `artifact-store: the volume "${mount.source}" at ${dir} is not a named volume declared under top-level volumes`);
  });
});

describe('docker-compose.yml: NATS and Redis', () => {
  test('nats runs nats 2.11 with JetStream stored on a volume, and serves monitoring', () => {
    const nats = service('nats');
    assert.match(String(nats.image), /^nats:2\.11(?:$|[-.])/, `nats: image is ${JSON.stringify(nats.image)}, expected nats:2.11`);
    const cmd = commandOf(nats);
    // JetStream, its store dir and monitoring come from the command line or the config file (-c).
    const conf = natsConfigText(cmd);
    assert.ok(cmd.includes('-js') || cmd.includes('--jetstream') || /^jetstream\b/m.test(conf), `nats: command ${JSON.stringify(cmd)} does not enable JetStream (-js)`);
    const storeDir = flagValue(cmd, '-sd', '--store_dir') ?? /store_dir:\s*"([^"]+)"/.exec(conf)?.[1];
    assert.ok(storeDir, `nats: command ${JSON.stringify(cmd)} sets no JetStream store dir (-sd)`);
    const mount = volumesOf(nats).find((v) => v.target === storeDir);
    assert.ok(mount, `nats: nothing is mounted at the JetStream store dir ${storeDir}, so streams die with the container`);
    assert.ok(namedVolumes.has(mount.source), `nats: "${mount.source}" at ${storeDir} is not a declared named volume`);
    const monitor = Number(flagValue(cmd, '-m', '--http_port') ?? /^http_port:\s*(\d+)/m.exec(conf)?.[1]);
    assert.ok(monitor > 0, `nats: command ${JSON.stringify(cmd)} does not enable the monitoring port (-m)`);
    assert.ok(portsOf(nats).some((p) => p.target === monitor), `nats: monitoring port ${monitor} is not published`);
    assert.ok(healthcheckText(nats), 'nats: no healthcheck, so depends_on: service_healthy would never be satisfied');
  });

  test('nats reads the generated infra/nats/nats-server.conf, and every service connects as its own user', () => {
    const nats = service('nats');
    const cmd = commandOf(nats);
    const confPath = flagValue(cmd, '-c', '--config');
    assert.ok(confPath, `nats: command ${JSON.stringify(cmd)} names no config file (-c)`);
    const mount = volumesOf(nats).find((v) => v.target === confPath);
    assert.equal(mount?.source, `./${NATS_CONFIG_FILE}`, `nats: ${confPath} is not ${NATS_CONFIG_FILE} from the repo`);
    // The file is the generator's output for the namespace `muse`: regenerate it rather than edit it.
    const expected = natsServerConfig({
      names: museNames('muse'),
      storeDir: '/data',
      httpPort: 8222,
      users: [...NATS_SERVICE_ROLES, 'admin' as const].map((role) => ({ role, user: `muse-${role}`, password: `$MUSE_NATS_PASSWORD_${role.toUpperCase().replace(/-/g, '_')}` })),
    });
    assert.equal(readText(NATS_CONFIG_FILE), expected, `${NATS_CONFIG_FILE} is stale: node scripts/nats-config.mjs --store-dir /data --http-port 8222 --out ${NATS_CONFIG_FILE}`);
    const natsEnv = environmentOf(nats);
    for (const name of SERVICE_NAMES) {
      const env = environmentOf(service(name));
      assert.equal(env.NATS_USER, `muse-${name}`, `${name}: NATS_USER is ${JSON.stringify(env.NATS_USER)}`);
      const variable = `MUSE_NATS_PASSWORD_${name.toUpperCase().replace(/-/g, '_')}`;
      assert.ok(readText(NATS_CONFIG_FILE).includes(`password: $${variable},`), `${NATS_CONFIG_FILE}: muse-${name}'s password is not $${variable}`);
      assert.ok(natsEnv[variable], `nats: ${variable} is not set in its environment`);
      assert.equal(env.NATS_PASSWORD, natsEnv[variable], `${name}: NATS_PASSWORD differs from the nats service's ${variable}`);
    }
  });

  test('redis has no default user, and the services\' ACL user may touch only the `muse` namespace', () => {
    const cmd = commandOf(service('redis')).map(interpolate);
    const users = cmd.flatMap((w, i) => (w === '--user' ? [cmd.slice(i + 1, cmd.indexOf('--user', i + 1) === -1 ? undefined : cmd.indexOf('--user', i + 1))] : []));
    assert.deepEqual(users.find((u) => u[0] === 'default')?.slice(0, 2), ['default', 'off'], 'redis: the default user is not switched off');
    for (const name of SERVICE_NAMES) {
      const url = new URL(environmentOf(service(name)).REDIS_URL ?? '');
      const acl = users.find((u) => u[0] === url.username);
      assert.ok(acl, `${name}: Redis user "${url.username}" is not defined in the redis command`);
      assert.ok(acl.includes('on') && acl.includes(`>${decodeURIComponent(url.password)}`), `${name}: the password in REDIS_URL is not the ACL user's`);
      const keys = acl.filter((w) => w.startsWith('~'));
      assert.deepEqual(keys.sort(), ['~muse:*', '~mutex:muse:*'], `${name}: the ACL user's key patterns are ${JSON.stringify(keys)}`);
    }
  });

  test('redis runs redis 7 with the append-only file on a volume', () => {
    const redis = service('redis');
    assert.match(String(redis.image), /^redis:7(?:$|[-.])/, `redis: image is ${JSON.stringify(redis.image)}, expected redis:7`);
    const cmd = commandOf(redis);
    assert.equal(flagValue(cmd, '--appendonly'), 'yes', `redis: command ${JSON.stringify(cmd)} does not turn AOF on (--appendonly yes)`);
    const mount = volumesOf(redis).find((v) => v.target === '/data');
    assert.ok(mount && namedVolumes.has(mount.source), 'redis: /data (where the AOF lives) is not on a declared named volume');
    assert.ok(healthcheckText(redis), 'redis: no healthcheck, so depends_on: service_healthy would never be satisfied');
  });

  test('every named volume a service mounts is declared', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const v of volumesOf(asObj(svc, name))) {
        if (v.source.startsWith('.') || v.source.startsWith('/') || v.source === '') continue;
        assert.ok(namedVolumes.has(v.source), `${name}: mounts volume "${v.source}", which is not declared under top-level volumes`);
      }
    }
  });
});

describe('Prometheus', () => {
  const prom = readYaml(PROMETHEUS_FILE);
  const jobs = Array.isArray(prom.scrape_configs) ? prom.scrape_configs.filter(isObj) : [];

  test('compose runs prometheus with infra/prometheus/prometheus.yml', () => {
    const svc = service('prometheus');
    assert.match(String(svc.image), /^prom\/prometheus(?::|$)/, `prometheus: image is ${JSON.stringify(svc.image)}, expected prom/prometheus`);
    const mount = volumesOf(svc).find((v) => v.source.replace(/^\.\//, '') === PROMETHEUS_FILE);
    assert.ok(mount, `prometheus: ${PROMETHEUS_FILE} is not mounted`);
    assert.equal(mount.target, '/etc/prometheus/prometheus.yml', `prometheus: ${PROMETHEUS_FILE} is mounted at ${mount.target}, not where Prometheus reads its config`);
  });

  for (const name of SERVICE_NAMES) {
    test(`scrapes ${name}'s /metrics`, () => {
      const port = defaultPort(name);
      const target = `${name}:${port}`;
      const job = jobs.find((j) => {
        const statics = Array.isArray(j.static_configs) ? j.static_configs.filter(isObj) : [];
        const dns = Array.isArray(j.dns_sd_configs) ? j.dns_sd_configs.filter(isObj) : [];
        return (
          statics.some((s) => Array.isArray(s.targets) && s.targets.includes(target)) ||
          dns.some((d) => Array.isArray(d.names) && d.names.includes(name) && Number(d.port) === port)
        );
      });
      assert.ok(job, `${PROMETHEUS_FILE}: no scrape job targets ${target} (static_configs target, or dns_sd_configs name ${name} with port ${port})`);
      assert.equal(job.metrics_path ?? '/metrics', '/metrics', `${PROMETHEUS_FILE}: job ${String(job.job_name)} scrapes ${String(job.metrics_path)}, expected /metrics`);
      assert.equal(job.scheme ?? 'http', 'http', `${PROMETHEUS_FILE}: job ${String(job.job_name)} uses scheme ${String(job.scheme)}; the services serve plain http`);
    });
  }
});

describe('Grafana', () => {
  const grafana = (): Obj => service('grafana');
  const mountOf = (hostPath: string): VolumeMount | undefined =>
    volumesOf(grafana()).find((v) => v.source.replace(/^\.\//, '').replace(/\/$/, '') === hostPath);

  const yamlFiles = (dir: string): string[] =>
    existsSync(join(ROOT, dir)) ? readdirSync(join(ROOT, dir)).filter((f) => /\.ya?ml$/.test(f)).map((f) => `${dir}/${f}`) : [];

  const datasources = (): Obj[] =>
    yamlFiles(GRAFANA_DATASOURCES_DIR).flatMap((f) => {
      const doc = readYaml(f);
      return Array.isArray(doc.datasources) ? doc.datasources.filter(isObj) : [];
    });

  test('compose runs grafana with infra/grafana/provisioning mounted', () => {
    assert.match(String(grafana().image), /^grafana\/grafana(?::|$)/, `grafana: image is ${JSON.stringify(grafana().image)}, expected grafana/grafana`);
    const prov = mountOf('infra/grafana/provisioning');
    assert.ok(prov, 'grafana: infra/grafana/provisioning is not mounted');
    assert.equal(prov.target, '/etc/grafana/provisioning', `grafana: provisioning is mounted at ${prov.target}, not /etc/grafana/provisioning`);
  });

  test('a Prometheus datasource points at the compose prometheus service', () => {
    const prometheus = datasources().filter((d) => d.type === 'prometheus');
    assert.ok(prometheus.length > 0, `${GRAFANA_DATASOURCES_DIR}: no datasource of type prometheus`);
    const ok = prometheus.find((d) => {
      try {
        const url = new URL(String(d.url));
        return url.hostname === 'prometheus' && (url.port || '80') === '9090';
      } catch {
        return false;
      }
    });
    assert.ok(ok, `${GRAFANA_DATASOURCES_DIR}: no Prometheus datasource at http://prometheus:9090 (found ${prometheus.map((d) => String(d.url)).join(', ')})`);
    assert.ok('prometheus' in services, 'the datasource URL names a prometheus service that compose does not run');
  });

  test('the dashboard provider reads the folder where compose mounts infra/grafana/dashboards', () => {
    const providers = yamlFiles(GRAFANA_DASHBOARD_PROVIDERS_DIR).flatMap((f) => {
      const doc = readYaml(f);
      return Array.isArray(doc.providers) ? doc.providers.filter(isObj) : [];
    });
    assert.ok(providers.length > 0, `${GRAFANA_DASHBOARD_PROVIDERS_DIR}: no dashboard provider`);
    const mount = mountOf(GRAFANA_DASHBOARDS_DIR);
    assert.ok(mount, `grafana: ${GRAFANA_DASHBOARDS_DIR} is not mounted`);
    const paths = providers.map((p) => (isObj(p.options) ? String(p.options.path) : ''));
    assert.ok(paths.includes(mount.target), `${GRAFANA_DASHBOARD_PROVIDERS_DIR}: providers read ${paths.join(', ')}, but the dashboards are mounted at ${mount.target}`);
  });

  test('dashboards query only metrics the services export, through the provisioned datasource', () => {
    const files = readdirSync(join(ROOT, GRAFANA_DASHBOARDS_DIR)).filter((f) => f.endsWith('.json'));
    assert.ok(files.length > 0, `${GRAFANA_DASHBOARDS_DIR}: no dashboard JSON`);
    const uids = new Set(datasources().map((d) => d.uid).filter((u): u is string => typeof u === 'string'));
    for (const f of files) {
      const path = `${GRAFANA_DASHBOARDS_DIR}/${f}`;
      let dash: unknown;
      try {
        dash = JSON.parse(readText(path));
      } catch (err) {
        assert.fail(`${path} is not valid JSON: ${(err as Error).message}`);
      }
      const exprs = collectExprs(dash);
      assert.ok(exprs.length > 0, `${path}: no panel queries (expr)`);
      for (const expr of exprs) {
        const names = promqlMetricNames(expr);
        assert.ok(names.length > 0, `${path}: query "${expr}" names no metric`);
        const unknown = names.filter((n) => !isKnownMetric(n));
        assert.deepEqual(unknown, [], `${path}: query "${expr}" reads ${unknown.join(', ')}, which no service exports`);
      }
      for (const uid of collectDatasourceUids(dash)) {
        assert.ok(uids.has(uid), `${path}: panels use datasource uid "${uid}", which is not provisioned (provisioned: ${[...uids].join(', ')})`);
      }
    }
  });

  test('the PromQL metric-name reader', () => {
    assert.deepEqual(promqlMetricNames('sum by (role, state) (muse_queue_depth{role=~"a|b"})'), ['muse_queue_depth']);
    assert.deepEqual(
      promqlMetricNames('histogram_quantile(0.95, sum by (le) (rate(muse_gateway_request_duration_seconds_bucket[$__rate_interval])))'),
      ['muse_gateway_request_duration_seconds_bucket'],
    );
    assert.deepEqual(promqlMetricNames('a_total / on(service) group_left b_info * 1e3'), ['a_total', 'b_info']);
    assert.ok(isKnownMetric('muse_process_process_resident_memory_bytes'));
    assert.ok(isKnownMetric('muse_gateway_request_duration_seconds_count'));
    assert.ok(!isKnownMetric('muse_runs_total_bucket'));
    assert.ok(!isKnownMetric('http_requests_total'));
  });
});

describe('Tracing: OpenTelemetry collector and Jaeger', () => {
  const OTEL_CONFIG_FILE = 'infra/otel/otel-collector.yaml';

  /** The collector config compose mounts where the collector's --config flag reads it. */
  const collectorConfig = (): Obj => {
    const svc = service('otel-collector');
    const path = flagValue(commandOf(svc), '--config');
    assert.ok(path, `otel-collector: command ${JSON.stringify(svc.command)} names no --config`);
    const mount = volumesOf(svc).find((v) => v.target === path);
    assert.equal(mount?.source.replace(/^\.\//, ''), OTEL_CONFIG_FILE, `otel-collector: ${path} is not ${OTEL_CONFIG_FILE} from the repo`);
    return readYaml(OTEL_CONFIG_FILE);
  };

  test('compose runs the contrib collector and Jaeger, with the Jaeger UI published', () => {
    assert.match(String(service('otel-collector').image), /^otel\/opentelemetry-collector-contrib:\d/, 'otel-collector: expected a pinned otel/opentelemetry-collector-contrib image');
    assert.match(String(service('jaeger').image), /^jaegertracing\/(jaeger|all-in-one):\d/, 'jaeger: expected a pinned jaegertracing image');
    assert.ok(portsOf(service('jaeger')).some((p) => p.target === 16686), 'jaeger: the UI port 16686 is not published');
  });

  test('the collector receives OTLP over HTTP and sends the traces pipeline to the Jaeger service', () => {
    const conf = collectorConfig();
    const receivers = asObj(conf.receivers, 'receivers');
    const otlp = asObj(receivers.otlp, 'receivers.otlp');
    const httpEndpoint = String(asObj(asObj(otlp.protocols, 'receivers.otlp.protocols').http, 'receivers.otlp.protocols.http').endpoint);
    assert.match(httpEndpoint, /^0\.0\.0\.0:\d+$/, `otlp http receiver listens on ${httpEndpoint}; in a container it must be 0.0.0.0`);
    const pipelines = asObj(asObj(conf.service, 'service').pipelines, 'service.pipelines');
    const traces = asObj(pipelines.traces, 'service.pipelines.traces');
    assert.ok((traces.receivers as string[]).includes('otlp'), 'the traces pipeline does not receive otlp');
    const exporters = asObj(conf.exporters, 'exporters');
    const toJaeger = (traces.exporters as string[]).filter((name) => {
      const e = exporters[name];
      return isObj(e) && typeof e.endpoint === 'string' && /^(?:https?:\/\/)?jaeger:\d+/.test(e.endpoint);
    });
    assert.ok(toJaeger.length > 0, `the traces pipeline exports to ${JSON.stringify(traces.exporters)}, none of them at the jaeger service`);
    for (const name of [...(traces.receivers as string[]), ...((traces.processors as string[] | undefined) ?? []), ...(traces.exporters as string[])]) {
      const section = name in receivers ? receivers : name in exporters ? exporters : asObj(conf.processors, 'processors');
      assert.ok(name in section, `the traces pipeline names ${name}, which is not configured`);
    }
  });

  test('every Muse service exports its traces to the collector\'s OTLP/HTTP port', () => {
    const receivers = asObj(collectorConfig().receivers, 'receivers');
    const httpPort = String(asObj(asObj(asObj(receivers.otlp, 'otlp').protocols, 'protocols').http, 'http').endpoint).split(':').at(-1);
    for (const name of SERVICE_NAMES) {
      const env = environmentOf(service(name));
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, `http://otel-collector:${httpPort}`, `${name}: OTEL_EXPORTER_OTLP_ENDPOINT is ${JSON.stringify(env.OTEL_EXPORTER_OTLP_ENDPOINT)}`);
    }
  });
});

describe('Dockerfile', () => {
  const text = readText('Dockerfile');
  // Join continuation lines, drop comments.
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const globalArgs = new Map<string, string>();
  for (const l of lines) {
    if (/^FROM\s/i.test(l)) break;
    const m = /^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/i.exec(l);
    if (m) globalArgs.set(m[1]!, (m[2] ?? '').replace(/^["']|["']$/g, ''));
  }
  const stages: string[] = [];
  const bases: string[] = [];
  for (const l of lines) {
    const m = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
    if (!m) continue;
    const image = m[1]!.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_x, n: string) => globalArgs.get(n) ?? '');
    if (!stages.includes(image)) bases.push(image);
    if (m[2]) stages.push(m[2]);
  }
  const runs = lines.filter((l) => /^RUN\s/i.test(l)).join('\n');
  const finalStage = lines.slice(lines.findLastIndex((l) => /^FROM\s/i.test(l)));

  test('builds on Node 24', () => {
    assert.ok(bases.length > 0, 'Dockerfile: no FROM');
    for (const b of bases) assert.match(b, /^node:24(?:$|[-.])/, `Dockerfile: base image ${b} is not Node 24`);
  });

  test('installs with npm install (not npm ci) and builds with npm run build', () => {
    assert.match(runs, /\bnpm (install|i)\b/, 'Dockerfile: no RUN npm install');
    assert.doesNotMatch(runs, /\bnpm ci\b/, 'Dockerfile: uses npm ci, which fails on lockfiles made here (missing optional platform packages)');
    assert.match(runs, /\bnpm run build\b/, 'Dockerfile: no RUN npm run build');
  });

  test('runs apps/$SERVICE/dist/main.js as a non-root user listening on 0.0.0.0', () => {
    assert.ok(lines.some((l) => /^ARG\s+SERVICE\b/i.test(l)), 'Dockerfile: no ARG SERVICE');
    assert.match(text, /apps\/\$\{?SERVICE\}?\/dist\/main\.js/, 'Dockerfile: does not run apps/$SERVICE/dist/main.js');
    const user = finalStage.filter((l) => /^USER\s/i.test(l)).at(-1);
    assert.ok(user, 'Dockerfile: the runtime stage sets no USER, so the service runs as root');
    assert.doesNotMatch(user, /^USER\s+(root|0)(:|\s|$)/i, `Dockerfile: runtime stage runs as root (${user})`);
    assert.ok(finalStage.some((l) => /^ENV\s.*\bHOST=0\.0\.0\.0\b/i.test(l)), 'Dockerfile: runtime stage does not set HOST=0.0.0.0');
  });

  test('the runtime stage starts services the way the launcher does: its environment defaults and V8 flags', () => {
    const env = finalStage.filter((l) => /^ENV\s/i.test(l)).join(' ');
    for (const [name, value] of Object.entries(SERVICE_ENV_DEFAULTS)) {
      assert.match(env, new RegExp(`(^|\\s)${name}=${value}(\\s|$)`), `Dockerfile: the runtime stage does not set ${name}=${value}`);
    }
    const entrypoint = finalStage.find((l) => /^ENTRYPOINT\s/i.test(l)) ?? '';
    for (const flag of SERVICE_NODE_FLAGS) assert.ok(entrypoint.includes(flag), `Dockerfile: the entrypoint does not pass ${flag}`);
  });

  test('.dockerignore keeps host builds out and test/ in (npm run build compiles it)', () => {
    const ignore = readText('.dockerignore')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    assert.ok(ignore.some((l) => /(^|\/)node_modules\/?$/.test(l)), '.dockerignore: node_modules is not ignored');
    assert.ok(ignore.some((l) => /(^|\/)dist\/?$/.test(l)), '.dockerignore: dist folders are not ignored');
    for (const keep of ['test', 'libs', 'apps', 'package-lock.json', 'tsconfig.build.json']) {
      assert.ok(!ignore.some((l) => l.replace(/^\/|\/$/g, '') === keep), `.dockerignore: ignores ${keep}, which the build needs`);
    }
  });
});

/**
 * A whole Muse cluster on one machine: the six services as separate OS
 * processes over one NATS and one Redis. `npm start` and the end-to-end tests
 * both start it through here.
 */
import { join } from 'node:path';
import { SERVICE_PORT_VARS, type ServiceName } from '@muse/contracts';
import { ServiceProcess } from './service-process.js';

export interface ClusterOptions {
  namespace: string;
  natsUrl: string;
  redisUrl: string;
  /** `default` uses each service's default port; `random` lets the OS pick. */
  ports: 'default' | 'random';
  /** How many agent-worker processes. @default 1 */
  workers?: number;
  /** How many coordinator processes. @default 1 */
  coordinators?: number;
  /** How many scaler replicas (one leads, the others stand by). @default 1 */
  scalers?: number;
  /**
   * The first admin API key (`MUSE_BOOTSTRAP_API_KEY` of the gateway): the
   * launcher and the tests know it, so their clients work with no extra step.
   */
  bootstrapApiKey?: string;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /** Extra environment per service. */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Environment for one process by instance name (e.g. `agent-worker-2`), over `serviceEnv`. */
  instanceEnv?: Record<string, Record<string, string>>;
  /** Folder for per-process log files. */
  logDir?: string;
  /** Folder for workspaces and artifacts. */
  dataDir: string;
  log?: (line: string) => void;
}

export class Cluster {
  readonly processes: ServiceProcess[] = [];

  private constructor(readonly opts: ClusterOptions) {}

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(opts);
    try {
      await cluster.boot();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private envFor(service: ServiceName, instance: string): Record<string, string> {
    const o = this.opts;
    const env: Record<string, string> = {
      NATS_URL: o.natsUrl,
      REDIS_URL: o.redisUrl,
      MUSE_NAMESPACE: o.namespace,
      MUSE_WORKSPACE_DIR: join(o.dataDir, 'workspaces'),
      MUSE_ARTIFACT_DIR: join(o.dataDir, 'artifacts'),
      ...(service === 'gateway' && o.bootstrapApiKey ? { MUSE_BOOTSTRAP_API_KEY: o.bootstrapApiKey } : {}),
      // The cluster starts its own fixed workers, so its scaler only reports (external driver) unless told
      // otherwise: a `local` driver beside them would start a second pool. Tests of the scaler set it.
      ...(service === 'scaler' ? { MUSE_SCALER_DRIVER: 'external' } : {}),
      ...(o.env ?? {}),
      ...(o.serviceEnv?.[service] ?? {}),
      ...(o.instanceEnv?.[instance] ?? {}),
    };
    // Every process of a service after the first takes a port the OS picks: two workers cannot share one.
    const sibling = this.processes.some((p) => p.opts.service === service);
    if (o.ports === 'random' || sibling) env[SERVICE_PORT_VARS[service]] = '0';
    if (service === 'agent-worker' && !env.MUSE_AGENT_ID) env.MUSE_AGENT_ID = instance;
    const store = this.processes.find((p) => p.opts.service === 'artifact-store');
    // The scaler passes it on to the workers its local driver starts.
    if (store && (service === 'gateway' || service === 'agent-worker' || service === 'scaler')) env.MUSE_ARTIFACT_STORE_URL = store.url;
    return env;
  }

  private spawn(service: ServiceName, instance: string = service): ServiceProcess {
    const p = new ServiceProcess({
      service,
      instance,
      env: this.envFor(service, instance),
      ...(this.opts.logDir ? { logFile: join(this.opts.logDir, `${instance}.log`) } : {}),
    });
    this.processes.push(p);
    return p;
  }

  private async boot(): Promise<void> {
    const log = this.opts.log ?? (() => undefined);
    // The artifact store first: the gateway and the workers are told its URL.
    const store = this.spawn('artifact-store');
    await store.start();
    const rest: ServiceProcess[] = [];
    const coordinators = this.opts.coordinators ?? 1;
    for (let i = 1; i <= coordinators; i++) rest.push(this.spawn('coordinator', coordinators > 1 ? `coordinator-${i}` : 'coordinator'));
    const workers = this.opts.workers ?? 1;
    for (let i = 1; i <= workers; i++) rest.push(this.spawn('agent-worker', `agent-worker-${i}`));
    for (const s of ['gateway', 'observability'] as const) rest.push(this.spawn(s));
    const scalers = this.opts.scalers ?? 1;
    for (let i = 1; i <= scalers; i++) rest.push(this.spawn('scaler', scalers > 1 ? `scaler-${i}` : 'scaler'));
    await Promise.all(rest.map((p) => p.start()));
    await Promise.all(this.processes.map((p) => p.waitReady()));
    for (const p of this.processes) log(`${p.instance.padEnd(16)} ${p.url} (pid ${p.pid})`);
  }

  get(instance: string): ServiceProcess {
    const p = this.processes.find((x) => x.instance === instance);
    if (!p) throw new Error(`no process ${instance}`);
    return p;
  }

  url(service: ServiceName): string {
    const p = this.processes.find((x) => x.opts.service === service && x.running);
    if (!p) throw new Error(`no running ${service}`);
    return p.url;
  }

  /** Starts a fresh process in place of `instance` (after a kill), with the same environment. */
  async restart(instance: string): Promise<ServiceProcess> {
    const old = this.get(instance);
    if (old.running) await old.stop();
    const p = new ServiceProcess({ ...old.opts, env: { ...old.opts.env } });
    this.processes[this.processes.indexOf(old)] = p;
    await p.start();
    await p.waitReady();
    return p;
  }

  /** Stops every process: gateway first (no new work), workers and coordinators after. */
  async stop(): Promise<void> {
    const order: ServiceName[] = ['gateway', 'scaler', 'observability', 'agent-worker', 'coordinator', 'artifact-store'];
    for (const service of order) {
      await Promise.all(this.processes.filter((p) => p.opts.service === service).map((p) => p.stop()));
    }
  }
}

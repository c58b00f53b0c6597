/**
 * `muse up` (what `npm start` runs): bring up NATS, Redis and the six services
 * on this machine, run the sample workflow, print where to look, and keep the
 * cluster running until Ctrl-C, which stops everything it started.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CommonConfigShape } from '@muse/contracts';
import { Cluster, ensureInfra, InfraError, REPO_ROOT, type InfraHandle } from '@muse/cluster';
import { ensureBootstrapKey } from './api-key-file.js';
import { GatewayClient } from './gateway.client.js';
import { bold, dim, formatEvent, green, red } from './format.js';

export interface UpOptions {
  demo: boolean;
  exitAfterDemo: boolean;
  workers: number;
}

export async function up(opts: UpOptions): Promise<number> {
  const natsUrl = process.env.NATS_URL ?? CommonConfigShape.NATS_URL.parse(undefined);
  const redisUrl = process.env.REDIS_URL ?? CommonConfigShape.REDIS_URL.parse(undefined);
  const namespace = process.env.MUSE_NAMESPACE ?? 'muse';
  // Data, logs, workspaces and artifacts of this cluster. @default <repo>/.muse
  const home = process.env.MUSE_HOME ?? join(REPO_ROOT, '.muse');
  const say = (line: string) => process.stdout.write(`${dim('muse')} ${line}\n`);

  if (!existsSync(join(REPO_ROOT, 'apps', 'gateway', 'dist', 'main.js'))) {
    say(red('the services are not built: run `npm run build` (npm start does it for you)'));
    return 1;
  }

  let infra: InfraHandle;
  try {
    infra = await ensureInfra({ natsUrl, redisUrl, dataDir: join(home, 'data'), log: say });
  } catch (err) {
    say(red(err instanceof InfraError ? err.message : `could not start NATS/Redis: ${String(err)}`));
    return 1;
  }
  say(`NATS ${natsUrl}${infra.started.includes('nats-server') ? ' (started here)' : ''}, Redis ${redisUrl}${infra.started.includes('redis-server') ? ' (started here)' : ''}, namespace "${namespace}"`);

  let bootstrap: ReturnType<typeof ensureBootstrapKey>;
  try {
    bootstrap = ensureBootstrapKey(REPO_ROOT);
  } catch (err) {
    say(red((err as Error).message));
    await infra.stop();
    return 1;
  }
  say(`admin API key ${bootstrap.created ? 'written to' : 'read from'} ${bootstrap.file} (mode 0600; the CLI uses it by itself)`);

  let cluster: Cluster;
  try {
    cluster = await Cluster.start({
      bootstrapApiKey: bootstrap.key,
      namespace,
      natsUrl,
      redisUrl,
      ports: 'default',
      workers: opts.workers,
      dataDir: home,
      logDir: join(home, 'logs'),
      // A little latency on the local model makes the demo's progress visible.
      env: { MUSE_LOCAL_PROVIDER_DELAY_MS: process.env.MUSE_LOCAL_PROVIDER_DELAY_MS ?? '200' },
      log: (line) => say(`started ${line}`),
    });
  } catch (err) {
    say(red(`the cluster did not come up: ${(err as Error).message}`));
    say(`logs are in ${join(home, 'logs')}`);
    await infra.stop();
    return 1;
  }

  let stopping = false;
  const shutdown = async (code: number): Promise<number> => {
    if (stopping) return code;
    stopping = true;
    say('stopping the cluster...');
    await cluster.stop();
    await infra.stop();
    say('stopped');
    return code;
  };

  const gatewayUrl = cluster.url('gateway');
  const obsUrl = cluster.url('observability');
  let code = 0;
  if (opts.demo) {
    const client = new GatewayClient(gatewayUrl, bootstrap.key);
    try {
      const wf = await client.registerWorkflowFile(join(REPO_ROOT, 'examples', 'code-review.yaml'));
      say(`registered workflow ${wf.name} v${wf.version}`);
      const run = await client.submitRun({ workflow: wf.name, input: { repo: 'github.com/acme/widgets' } });
      say(`submitted run ${run.id}`);
      const final = await client.watchRun(run.id, (ev) => say(formatEvent(ev)), 120_000);
      const out = typeof final.output === 'string' ? final.output : JSON.stringify(final.output);
      process.stdout.write(
        [
          '',
          bold(final.status === 'succeeded' ? green('Muse is up and the sample run succeeded.') : red(`The sample run ended ${final.status}.`)),
          `  gateway            ${gatewayUrl}   (API docs: ${gatewayUrl}/docs)`,
          `  dashboard          ${obsUrl}/`,
          `  dashboard snapshot ${obsUrl}/v1/snapshot`,
          `  run id             ${final.id}   (${gatewayUrl}/v1/runs/${final.id})`,
          `  final output       ${out}`,
          `  logs               ${join(home, 'logs')}`,
          `  admin API key      ${bootstrap.file}`,
          `  try                npm run muse -- run code-review --input repo=my/repo --watch`,
          '',
        ].join('\n') + '\n',
      );
      if (final.status !== 'succeeded') code = 1;
    } catch (err) {
      say(red(`the sample run did not complete: ${(err as Error).message}`));
      code = 1;
    }
  } else {
    say(`gateway ${gatewayUrl}, dashboard ${obsUrl}/`);
  }
  if (opts.exitAfterDemo || code !== 0) return shutdown(code);

  say('the cluster is running; press Ctrl-C to stop it');
  return new Promise<number>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void shutdown(0).then(resolve));
  });
}

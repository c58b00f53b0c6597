/**
 * The one way a Muse service starts and stops: parse the config (failing fast
 * with the variable's name), set up logs, metrics and traces, open the
 * service's connections, serve `/health/*` and `/metrics` beside the app's
 * routes, and on SIGTERM or SIGINT (or when the local launcher that started it
 * dies) stop taking work, let in-flight work finish within the grace period,
 * close connections and exit.
 */
import 'reflect-metadata';
import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { z } from 'zod';
import { parseConfig } from '@muse/contracts';
import { createLogger, type Logger } from './logger.js';
import { MuseMetrics } from './metrics.js';
import { Readiness } from './health.js';
import { ServiceKitModule } from './service-kit.module.js';
import { startTracing } from './tracing.js';
import { PinoNestLogger } from './nest-logger.js';
import { ServiceProfiler } from './service-profiler.js';
import { MemoryTrimmer, compactAfterStartup } from './memory-trim.js';
import { restoreIntl } from './defer-intl.js';
import { lazySchemaController } from './fastify-compilers.js';

export interface ServiceKit<C> {
  service: string;
  config: C;
  logger: Logger;
  metrics: MuseMetrics;
  readiness: Readiness;
  /** This process's side of profiling sessions; the service's bus answers the cluster's start/stop messages with it. */
  profiler: ServiceProfiler;
  /** Registers a closer; closers run in reverse order on shutdown, after the HTTP server stopped. */
  onShutdown(fn: () => Promise<void> | void): void;
  /** Registers a drainer; drainers run first on shutdown, while connections are still open. */
  onDrain(fn: () => Promise<void> | void): void;
}

export interface ServiceSpec<S extends z.ZodType> {
  service: string;
  configSchema: S;
  port: (config: z.infer<S>) => number;
  /** Opens the service's resources and returns its Nest module (or module class). */
  setup: (kit: ServiceKit<z.infer<S>>) => Promise<DynamicModule | Type<unknown>>;
  /** Options for Fastify (body limit, etc.). */
  fastify?: (config: z.infer<S>) => Record<string, unknown>;
  /** Last touches on the app before it listens (content-type parsers, filters, WebSocket upgrade). */
  configure?: (app: NestFastifyApplication, kit: ServiceKit<z.infer<S>>) => Promise<void> | void;
}

export interface RunningService {
  app: NestFastifyApplication;
  url: string;
  stop(): Promise<void>;
}

export async function runService<S extends z.ZodType>(spec: ServiceSpec<S>): Promise<RunningService> {
  restoreIntl(); // modules have loaded; formatters built from here on are the real ones (see boot.ts)
  let config: z.infer<S>;
  try {
    config = parseConfig(spec.configSchema, process.env);
  } catch (err) {
    process.stderr.write(`muse-${spec.service}: ${(err as Error).message}\n`);
    process.exit(78); // EX_CONFIG
  }
  const c = config as unknown as { LOG_LEVEL: string; OTEL_EXPORTER_OTLP_ENDPOINT?: string; HOST: string; MUSE_SHUTDOWN_GRACE_MS: number; MUSE_MEMORY_TRIM_PERIOD_MS: number; MUSE_MEMORY_TRIM_AFTER_WORK_MS: number };
  const logger = createLogger(spec.service, c.LOG_LEVEL);
  const stopTracing = await startTracing(spec.service, c.OTEL_EXPORTER_OTLP_ENDPOINT);
  const metrics = new MuseMetrics(spec.service);
  const readiness = new Readiness();
  const profiler = new ServiceProfiler(spec.service, metrics);
  const closers: Array<() => Promise<void> | void> = [stopTracing, () => profiler.close()];
  const drainers: Array<() => Promise<void> | void> = [];
  const kit: ServiceKit<z.infer<S>> = {
    service: spec.service,
    config,
    logger,
    metrics,
    readiness,
    profiler,
    onShutdown: (fn) => closers.push(fn),
    onDrain: (fn) => drainers.push(fn),
  };

  const appModule = await spec.setup(kit);
  @Module({ imports: [ServiceKitModule.forRoot({ metrics, readiness, logger }), appModule] })
  class RootModule {}

  const app = await NestFactory.create<NestFastifyApplication>(
    RootModule,
    new FastifyAdapter({ schemaController: lazySchemaController(), ...(spec.fastify?.(config) ?? {}) }),
    { logger: new PinoNestLogger(logger), abortOnError: false },
  );
  await spec.configure?.(app, kit);
  const port = spec.port(config);
  await app.listen(port, c.HOST);
  // After listening, so that the port a launcher chose is taken as soon as before; before the line it waits for.
  const compactMs = compactAfterStartup();
  const address = app.getHttpServer().address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${c.HOST}:${actualPort}`;
  // Always printed, whatever LOG_LEVEL says: launchers and tests learn the URL from this line.
  logger.child({}, { level: 'info' }).info({ url }, `muse-${spec.service} listening`);
  logger.debug({ ms: Math.round(compactMs), rssMb: Math.round(process.memoryUsage().rss / 1048576) }, 'start-up garbage collected');
  const trimmer = new MemoryTrimmer({ periodMs: c.MUSE_MEMORY_TRIM_PERIOD_MS, afterWorkMs: c.MUSE_MEMORY_TRIM_AFTER_WORK_MS, logger, metrics }).start();
  closers.push(() => trimmer.stop());

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('shutting down');
      readiness.startDraining();
      const hard = setTimeout(() => {
        logger.error({ graceMs: c.MUSE_SHUTDOWN_GRACE_MS }, 'grace period over; exiting with work in flight');
        process.exit(1);
      }, c.MUSE_SHUTDOWN_GRACE_MS + 2_000);
      hard.unref();
      for (const fn of drainers) await safely(fn, logger);
      await app.close().catch((err: unknown) => logger.error({ err }, 'closing http server'));
      for (const fn of closers.reverse()) await safely(fn, logger);
      logger.info('stopped');
    })();
    return stopping;
  };
  const stopAndExit = (): void => void stop().then(() => process.exit(0));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, stopAndExit);
  // Started by a local launcher (libs/cluster's ServiceProcess: `npm start`, `muse up`, the bench) over an IPC
  // channel: when the launcher dies without stopping it (a crash, SIGKILL), the channel closes, and the service
  // stops as on SIGTERM rather than running on as an orphan. Under Docker or Kubernetes there is no channel.
  // `process.send` exists exactly when the process was spawned with one, even once it has closed (`process.channel`
  // is then null).
  if (typeof process.send === 'function') {
    process.channel?.unref();
    const launcherGone = (): void => {
      logger.warn('the launcher that started this service is gone; shutting down');
      stopAndExit();
    };
    // It may have gone while this service was starting, before anything listened for it.
    if (process.connected) process.once('disconnect', launcherGone);
    else launcherGone();
  }
  return { app, url, stop };
}

async function safely(fn: () => Promise<void> | void, logger: Logger): Promise<void> {
  try {
    await fn();
  } catch (err) {
    logger.error({ err }, 'shutdown step failed');
  }
}

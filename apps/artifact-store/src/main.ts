/**
 * muse-artifact-store: content-addressed blobs (local filesystem, NATS
 * Object Store or S3), artifact metadata in Redis, fenced commits over NATS
 * request/reply and named writes over HTTP, lineage, retention and GC.
 */
import '@muse/telemetry/boot'; // first, before Nest loads: see libs/telemetry/src/boot.ts
import { ArtifactRepository, publishCommitPolicy } from '@muse/artifacts';
import { MuseError, museNames, ArtifactStoreConfigSchema, type ArtifactCommitResponse } from '@muse/contracts';
import { JetStreamBus, natsAuthFromConfig } from '@muse/messaging';
import { openRedis } from '@muse/queues/redis';
import { runService } from '@muse/telemetry';
import { ArtifactCommitHandler } from './artifact-commit.handler.js';
import { ArtifactContentService } from './artifact-content.service.js';
import { ArtifactStoreMetrics } from './artifact-store.metrics.js';
import { ArtifactStoreModule } from './artifact-store.module.js';
import { openBlobBackend } from './blob-backend.factory.js';
import { BlobGc } from './blob-gc.service.js';
import { ArtifactLineageService } from './artifact-lineage.service.js';
import { registerBlobUploadRoute, type BlobUploadDeps } from './blob-upload.route.js';
import { InFlightTracker } from './in-flight.tracker.js';
import { MuseErrorFilter } from './muse-error.filter.js';

/** How often temp files of dead uploads are swept after the one at start, in ms. */
const SWEEP_INTERVAL_MS = 10 * 60_000;

let upload: BlobUploadDeps | undefined;

await runService({
  service: 'artifact-store',
  configSchema: ArtifactStoreConfigSchema,
  port: (c) => c.ARTIFACT_STORE_PORT,
  setup: async (kit) => {
    const c = kit.config;
    const log = kit.logger;
    const names = museNames(c.MUSE_NAMESPACE);
    const metrics = new ArtifactStoreMetrics(kit.metrics);

    // A request handler should fail fast (and say so) while Redis is away, not hang.
    const redis = openRedis(kit, c.REDIS_URL, { connectionName: 'muse-artifact-store', mode: 'request' });
    const bus = await JetStreamBus.open(kit, { url: c.NATS_URL, names, name: 'muse-artifact-store', auth: natsAuthFromConfig(c) });

    const { backend: blobs, where, redisBlobBytes } = await openBlobBackend(c, names, bus.nc, redis, metrics);
    const removed = await blobs.init();
    log.info({ backend: blobs.kind, where, removedTemps: removed }, 'blob store ready');
    const sweeper = setInterval(() => {
      blobs.sweepTemps().then(
        (n) => n > 0 && log.info({ removedTemps: n }, 'removed temp files of dead uploads'),
        (err: unknown) => log.warn({ err }, 'temp sweep failed'),
      );
    }, SWEEP_INTERVAL_MS);
    sweeper.unref();
    kit.onShutdown(() => clearInterval(sweeper));

    const repo = new ArtifactRepository(redis, names);
    const defaultTtlMs = c.MUSE_ARTIFACT_TTL_DAYS * 86_400_000;
    // What the coordinator needs to commit a step's small outputs itself, as this store would (see @muse/artifacts).
    const publishPolicy = (): void => {
      publishCommitPolicy(redis, names, { redisBlobBytes, defaultTtlMs }).catch((err: unknown) => {
        log.warn({ err }, 'commit policy not published; trying again in 1 s (until then every commit comes here)');
        setTimeout(publishPolicy, 1_000).unref();
      });
    };
    publishPolicy();
    const gc = new BlobGc({ redis, names, backend: blobs, repo, graceMs: c.MUSE_ARTIFACT_GC_GRACE_MS, metrics, logger: log });
    const commits = new ArtifactCommitHandler({ blobs, repo, metrics, logger: log, defaultTtlMs, markPending: (digest) => gc.markPending(digest) });
    const collector = setInterval(() => gc.run().catch(() => undefined /* logged and counted by the pass */), c.MUSE_ARTIFACT_GC_INTERVAL_MS);
    collector.unref();
    kit.onShutdown(() => clearInterval(collector));
    const inFlight = new InFlightTracker();
    const draining = (): ArtifactCommitResponse => ({
      ok: false,
      error: new MuseError('MUSE_ERR_UNAVAILABLE', 'artifact store is shutting down; try again').toWire(),
    });
    bus.serve(names.artifactCommitSubject, (payload) => inFlight.run(() => commits.handle(payload), draining));
    kit.onDrain(async () => {
      inFlight.close();
      await inFlight.idle();
    });

    kit.readiness.add('data-dir', () => blobs.checkWritable());

    upload = {
      blobs,
      maxBytes: c.MUSE_ARTIFACT_MAX_BYTES,
      metrics,
      logger: log,
      markPending: (digest) => gc.markPending(digest),
      commit: (payload) => inFlight.run(() => commits.handle(payload), draining),
      highestToken: (runId) => repo.highestToken(runId),
    };
    const lineage = new ArtifactLineageService(repo, async (runId) => (await bus.readRunEvents(runId)).events);
    return ArtifactStoreModule.forRoot({ repo, content: new ArtifactContentService(blobs), lineage });
  },
  configure: (app, kit) => {
    app.useGlobalFilters(new MuseErrorFilter(kit.logger));
    registerBlobUploadRoute(app.getHttpAdapter().getInstance(), upload!);
  },
});

/** The artifact store's own Prometheus metrics (the kit adds process, health and HTTP basics). */
import type { Counter, Histogram } from 'prom-client';
import { ArtifactCommitCounters } from '@muse/artifacts';
import type { MuseMetrics } from '@muse/telemetry';

export type CommitOutcome = 'committed' | 'replayed' | 'stale' | 'conflict' | 'collecting' | 'not_found' | 'invalid' | 'error';

/** Beside the series every committer exports (ArtifactCommitCounters), the store's own. */
export class ArtifactStoreMetrics extends ArtifactCommitCounters {
  readonly staleTokenRejections: Counter;
  readonly gcRuns: Counter<'outcome'>;
  readonly gcDeletedBlobs: Counter;
  readonly gcDeletedBytes: Counter;
  readonly expiredArtifacts: Counter;
  readonly backendSeconds: Histogram<'backend' | 'op' | 'outcome'>;

  constructor(metrics: MuseMetrics) {
    super(metrics);
    this.staleTokenRejections = metrics.counter('muse_artifact_stale_token_rejections_total', 'Commits rejected because their fencing token was older than the newest seen for the run');
    this.gcRuns = metrics.counter('muse_artifact_gc_runs_total', 'Retention and garbage-collection passes, by outcome', ['outcome']);
    this.gcDeletedBlobs = metrics.counter('muse_artifact_gc_deleted_blobs_total', 'Blobs deleted because no artifact referenced them');
    this.gcDeletedBytes = metrics.counter('muse_artifact_gc_deleted_bytes_total', 'Bytes of blobs deleted by the garbage collector');
    this.expiredArtifacts = metrics.counter('muse_artifact_expired_total', 'Artifacts removed by retention (their TTL passed)');
    this.backendSeconds = metrics.histogram('muse_artifact_backend_seconds', 'Blob backend calls (put: the whole upload; get: opening a read), by backend, operation and outcome', ['backend', 'op', 'outcome']);
  }
}

/** The artifact store's own Prometheus metrics (the kit adds process, health and HTTP basics). */
import type { Counter, Histogram } from 'prom-client';
import type { MuseMetrics } from '@muse/telemetry';

export type CommitOutcome = 'committed' | 'replayed' | 'stale' | 'conflict' | 'collecting' | 'not_found' | 'invalid' | 'error';

export class ArtifactStoreMetrics {
  readonly bytesWritten: Counter;
  readonly blobsWritten: Counter<'dedup'>;
  readonly commits: Counter<'outcome'>;
  readonly staleTokenRejections: Counter;
  readonly gcRuns: Counter<'outcome'>;
  readonly gcDeletedBlobs: Counter;
  readonly gcDeletedBytes: Counter;
  readonly expiredArtifacts: Counter;
  readonly backendSeconds: Histogram<'backend' | 'op' | 'outcome'>;

  constructor(metrics: MuseMetrics) {
    this.bytesWritten = metrics.counter('muse_artifact_bytes_written_total', 'Bytes of new blobs stored (a deduplicated upload adds nothing)');
    this.blobsWritten = metrics.counter('muse_artifact_blobs_written_total', 'Blob uploads stored, by whether the content was already there', ['dedup']);
    this.commits = metrics.counter('muse_artifact_commits_total', 'Artifact commit requests, by outcome', ['outcome']);
    this.staleTokenRejections = metrics.counter('muse_artifact_stale_token_rejections_total', 'Commits rejected because their fencing token was older than the newest seen for the run');
    this.gcRuns = metrics.counter('muse_artifact_gc_runs_total', 'Retention and garbage-collection passes, by outcome', ['outcome']);
    this.gcDeletedBlobs = metrics.counter('muse_artifact_gc_deleted_blobs_total', 'Blobs deleted because no artifact referenced them');
    this.gcDeletedBytes = metrics.counter('muse_artifact_gc_deleted_bytes_total', 'Bytes of blobs deleted by the garbage collector');
    this.expiredArtifacts = metrics.counter('muse_artifact_expired_total', 'Artifacts removed by retention (their TTL passed)');
    this.backendSeconds = metrics.histogram('muse_artifact_backend_seconds', 'Blob backend calls (put: the whole upload; get: opening a read), by backend, operation and outcome', ['backend', 'op', 'outcome']);
  }
}

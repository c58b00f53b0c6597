/** The artifact store's own Prometheus metrics (the kit adds process, health and HTTP basics). */
import type { Counter } from 'prom-client';
import type { MuseMetrics } from '@muse/telemetry';

export type CommitOutcome = 'committed' | 'replayed' | 'stale' | 'not_found' | 'invalid' | 'error';

export class ArtifactStoreMetrics {
  readonly bytesWritten: Counter;
  readonly blobsWritten: Counter<'dedup'>;
  readonly commits: Counter<'outcome'>;
  readonly staleTokenRejections: Counter;

  constructor(metrics: MuseMetrics) {
    this.bytesWritten = metrics.counter('muse_artifact_bytes_written_total', 'Bytes of new blobs stored (a deduplicated upload adds nothing)');
    this.blobsWritten = metrics.counter('muse_artifact_blobs_written_total', 'Blob uploads stored, by whether the content was already there', ['dedup']);
    this.commits = metrics.counter('muse_artifact_commits_total', 'Artifact commit requests, by outcome', ['outcome']);
    this.staleTokenRejections = metrics.counter('muse_artifact_stale_token_rejections_total', 'Commits rejected because their fencing token was older than the newest seen for the run');
  }
}

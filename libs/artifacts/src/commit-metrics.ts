/**
 * The series every committer of artifacts exports: the artifact store, and the coordinator for the small outputs it
 * commits itself. Same names, each under its own `service` label, so a dashboard sums them over both.
 */
import type { Counter } from 'prom-client';
import type { MuseMetrics } from '@muse/telemetry';

export class ArtifactCommitCounters {
  readonly bytesWritten: Counter;
  readonly blobsWritten: Counter<'dedup'>;
  readonly commits: Counter<'outcome'>;

  constructor(metrics: MuseMetrics) {
    this.bytesWritten = metrics.counter('muse_artifact_bytes_written_total', 'Bytes of new blobs stored (a deduplicated upload adds nothing)');
    this.blobsWritten = metrics.counter('muse_artifact_blobs_written_total', 'Blobs stored (uploads, and small outputs that came inside a commit), by whether the content was already there', ['dedup']);
    this.commits = metrics.counter('muse_artifact_commits_total', 'Artifact commits, by outcome', ['outcome']);
  }

  /** The blobs that came inside an accepted commit (`stored[i]`: blob i was new to Redis), and the bytes of the new ones. */
  countStored(stored: readonly boolean[], blobs: ReadonlyArray<{ bytes: Uint8Array }>): void {
    stored.forEach((fresh, i) => {
      this.blobsWritten.inc({ dedup: String(!fresh) });
      if (fresh) this.bytesWritten.inc(blobs[i]!.bytes.length);
    });
  }
}

/** An accepted commit's outcome: `replayed` when it made no artifact (the same attempt committed them before). */
export function acceptedOutcome(artifacts: ReadonlyArray<{ created: boolean }>): 'committed' | 'replayed' {
  return artifacts.length === 0 || artifacts.some((a) => a.created) ? 'committed' : 'replayed';
}

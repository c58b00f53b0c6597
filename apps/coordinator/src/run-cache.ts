import { LRUCache } from 'lru-cache';
import type { RunState } from '@muse/engine';

export interface CachedRun {
  state: RunState | undefined;
  /** JetStream stream sequence of the run's last event (0 for none). */
  lastStreamSeq: number;
}

/**
 * Recently handled runs, the least recently used forgotten first. A stale entry is harmless: the append that follows
 * checks the log's last sequence and reloads on a mismatch.
 *
 * An LRU cache rather than a Map trimmed from its front: V8 leaves a Map's deleted entries in place until it rehashes,
 * so once more runs were handled than it keeps, finding the oldest skipped up to `max` deleted entries at every new run
 * (about 3 µs each at 10,000).
 */
export class RunCache {
  private readonly runs: LRUCache<string, CachedRun>;

  constructor(max = 10_000) {
    this.runs = new LRUCache({ max });
  }

  get(runId: string): CachedRun | undefined {
    return this.runs.get(runId);
  }

  set(runId: string, entry: CachedRun): void {
    this.runs.set(runId, entry);
  }

  delete(runId: string): void {
    this.runs.delete(runId);
  }

  get size(): number {
    return this.runs.size;
  }
}

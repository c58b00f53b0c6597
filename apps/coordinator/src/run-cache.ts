import type { RunState } from '@muse/engine';

export interface CachedRun {
  state: RunState | undefined;
  /** JetStream stream sequence of the run's last event (0 for none). */
  lastStreamSeq: number;
}

/**
 * Recently handled runs, newest last. A stale entry is harmless: the append
 * that follows checks the log's last sequence and reloads on a mismatch.
 */
export class RunCache {
  private readonly map = new Map<string, CachedRun>();

  constructor(private readonly max = 10_000) {}

  get(runId: string): CachedRun | undefined {
    const hit = this.map.get(runId);
    if (hit) {
      this.map.delete(runId);
      this.map.set(runId, hit);
    }
    return hit;
  }

  set(runId: string, entry: CachedRun): void {
    this.map.delete(runId);
    this.map.set(runId, entry);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }

  delete(runId: string): void {
    this.map.delete(runId);
  }

  get size(): number {
    return this.map.size;
  }
}

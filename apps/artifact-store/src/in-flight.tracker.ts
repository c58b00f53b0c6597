/**
 * Counts handlers in flight so a drain can wait for them, and turns new work
 * away once draining. Used for NATS requests, which the bus hands over
 * without a way to wait for their handlers.
 */
export class InFlightTracker {
  private count = 0;
  private closed = false;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Runs `fn`, or returns `rejected()` without running it once closed. */
  async run<T>(fn: () => Promise<T>, rejected: () => T): Promise<T> {
    if (this.closed) return rejected();
    this.count++;
    try {
      return await fn();
    } finally {
      this.count--;
      if (this.count === 0) for (const w of this.waiters.splice(0)) w();
    }
  }

  close(): void {
    this.closed = true;
  }

  /** Resolves once nothing is in flight. */
  idle(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

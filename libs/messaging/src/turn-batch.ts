/**
 * Items taken during one turn of the event loop, handed to `flush` together after it: what a busy service sends a
 * message for several times a turn (audit records) goes out as one message instead.
 */
export class TurnBatch<T> {
  private items: T[] = [];

  constructor(private readonly flush: (items: T[]) => void) {}

  add(items: readonly T[]): void {
    if (items.length === 0) return;
    if (this.items.length === 0) setImmediate(() => this.take());
    for (const item of items) this.items.push(item);
  }

  /** Hands what was taken so far to `flush` now (shutdown), instead of after the turn. */
  take(): void {
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.flush(items);
  }
}

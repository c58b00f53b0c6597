/** Retry with exponential backoff and "equal" jitter: half the delay fixed, half random. */

export interface RetryOptions {
  /** Tries in all, the first included. @default 5 */
  attempts?: number;
  /** Delay before the second try, in ms (doubles each time; jitter takes up to half off). @default 200 */
  baseDelayMs?: number;
  /** Largest delay between tries, in ms. @default 5_000 */
  maxDelayMs?: number;
  /** Whether an error is worth another try. @default every error */
  retryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** @internal for tests */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const base = opts.baseDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 5_000;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = opts.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || (opts.retryable && !opts.retryable(err))) throw err;
      const cap = Math.min(max, base * 2 ** (attempt - 1));
      const delay = Math.round(cap / 2 + (random() * cap) / 2);
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}

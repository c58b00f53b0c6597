/**
 * One WebSocket client of `/v1/stream`: its subscriptions and the protocol.
 * Transport-free (a socket and a bus are passed in as narrow interfaces), so
 * the ordering rules unit-test with fakes.
 *
 * For one run, the client gets every event from the start of the run's log
 * (or from `fromSeq`), in order, then live ones, with no gap and no
 * duplicate: one JetStream ordered consumer serves both the replay and the
 * live tail, and the session drops anything at or below the last seq sent.
 * `runId: "*"` gets the new events of every run of the caller's project.
 */
import { MuseError, StreamClientMessageSchema, zodIssues, type ErrorBody, type RunEvent, type StepProgress, type StreamClientMessage } from '@muse/contracts';
import type { Caller } from '../caller/caller.js';
import { isRunId } from '../runs/run-id.js';
import type { StreamServerMessage } from '@muse/contracts';

/** The slice of a `ws` WebSocket the session needs. */
export interface StreamSocket {
  send(data: string): void;
  close(code: number, reason: string): void;
  /** Bytes queued but not yet sent. */
  readonly bufferedAmount: number;
}

/**
 * `ws` as a StreamSocket whose frames sent within one tick leave in one write: the connection's socket stays corked
 * until the tick ends. A client subscribed to `*` then gets the events of a busy moment as a few packets, not one
 * write (and one wake-up at each end) per event.
 */
export function sendPerTick(ws: StreamSocket, socket: { cork(): void; uncork(): void }): StreamSocket {
  let corked = false;
  return {
    send(data) {
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(() => {
          corked = false;
          socket.uncork();
        });
      }
      ws.send(data);
    },
    close: (code, reason) => ws.close(code, reason),
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
  };
}

export interface StreamDeps {
  /** Whether the run exists and belongs to the project. */
  runVisible(project: string, runId: string): Promise<boolean>;
  /** `JetStreamBus.subscribeRunEvents`. */
  subscribe(
    runId: string,
    onEvent: (event: RunEvent) => void,
    from: 'all' | 'new',
    onEnd: (err?: unknown) => void,
  ): Promise<{ stop(): Promise<void> }>;
  /** Live step progress of one run (ephemeral, not in the log); absent = none is forwarded. */
  subscribeProgress?(runId: string, onProgress: (p: StepProgress) => void): { stop(): void };
}

export interface StreamLimits {
  /** Subscriptions (JetStream consumers) one connection may hold. @default 100 */
  maxSubscriptions: number;
  /** Unsent bytes after which a client is too slow and is disconnected. @default 16 MiB */
  maxBufferedBytes: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxSubscriptions: 100, maxBufferedBytes: 16 * 1024 * 1024 };

/** WebSocket close codes used by the session. */
export const CLOSE_CODES = { goingAway: 1001, policyViolation: 1008, tryAgainLater: 1013 } as const;

interface Subscription {
  runId: string;
  fromSeq: number;
  lastSeq: number;
  /** False until `subscribed` was sent; events wait in `queue` meanwhile. */
  live: boolean;
  queue: RunEvent[];
  cancelled: boolean;
  stop?: () => Promise<void>;
}

export class StreamSession {
  private readonly subs = new Map<string, Subscription>();
  private closed = false;

  constructor(
    private readonly socket: StreamSocket,
    private readonly caller: Caller,
    private readonly deps: StreamDeps,
    private readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS,
  ) {}

  /** Handles one text frame (null for a binary one). Never throws: a bad message gets an error reply. */
  async handle(text: string | null): Promise<void> {
    if (this.closed) return;
    if (text === null) return this.sendError(new MuseError('MUSE_ERR_REQUEST_INVALID', 'Send JSON text frames, not binary ones'));
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      return this.sendError(new MuseError('MUSE_ERR_REQUEST_MALFORMED_JSON', `The message is not valid JSON: ${(err as Error).message}`));
    }
    const parsed = StreamClientMessageSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error, raw);
      return this.sendError(new MuseError('MUSE_ERR_REQUEST_INVALID', `The message is invalid: ${issues[0]?.path ? `${issues[0].path}: ` : ''}${issues[0]?.message ?? ''}`, { details: { issues } }));
    }
    const msg: StreamClientMessage = parsed.data;
    switch (msg.op) {
      case 'ping':
        return this.send({ type: 'pong' });
      case 'subscribe':
        return this.subscribe(msg.runId, msg.fromSeq);
      case 'unsubscribe':
        return this.unsubscribe(msg.runId);
    }
  }

  private async subscribe(runId: string, fromSeq: number | undefined): Promise<void> {
    const all = runId === '*';
    if (all && fromSeq !== undefined) {
      return this.sendError(new MuseError('MUSE_ERR_REQUEST_INVALID', 'fromSeq applies to one run; "*" streams new events only'), runId);
    }
    if (this.subs.has(runId)) return this.sendError(new MuseError('MUSE_ERR_REQUEST_INVALID', `Already subscribed to "${runId}"`), runId);
    if (this.subs.size >= this.limits.maxSubscriptions) {
      return this.sendError(new MuseError('MUSE_ERR_REQUEST_INVALID', `At most ${this.limits.maxSubscriptions} subscriptions per connection`), runId);
    }
    // Reserved before the first await, so a second subscribe to the same run is refused meanwhile.
    const sub: Subscription = { runId, fromSeq: fromSeq ?? 1, lastSeq: 0, live: false, queue: [], cancelled: false };
    this.subs.set(runId, sub);
    try {
      if (!all && !(isRunId(runId) && (await this.deps.runVisible(this.caller.project, runId)))) {
        this.drop(sub);
        return this.sendError(new MuseError('MUSE_ERR_RUN_NOT_FOUND', `No run "${runId}"`), runId);
      }
      const handle = await this.deps.subscribe(runId, (event) => this.onEvent(sub, event), all ? 'new' : 'all', (cause) => this.onEnd(sub, cause));
      if (sub.cancelled) {
        await handle.stop();
        return;
      }
      // Progress of one run only (`*` is for events); sent while the subscription is live, outside the seq order of events.
      const progress = all ? undefined : this.deps.subscribeProgress?.(runId, (p) => this.onProgress(sub, p));
      sub.stop = async () => {
        progress?.stop();
        await handle.stop();
      };
    } catch (cause) {
      this.drop(sub);
      return this.sendError(new MuseError('MUSE_ERR_UNAVAILABLE', 'Could not subscribe to the event stream; retry', { cause }), runId);
    }
    this.send({ type: 'subscribed', runId });
    for (const event of sub.queue) this.send({ type: 'event', event });
    sub.queue = [];
    sub.live = true;
  }

  private onEvent(sub: Subscription, event: RunEvent): void {
    if (sub.cancelled || this.closed) return;
    if (event.project !== this.caller.project) return;
    if (sub.runId !== '*') {
      if (event.seq < sub.fromSeq || event.seq <= sub.lastSeq) return;
      sub.lastSeq = event.seq;
    }
    if (sub.live) this.send({ type: 'event', event });
    else sub.queue.push(event);
  }

  private onProgress(sub: Subscription, p: StepProgress): void {
    if (sub.cancelled || this.closed || !sub.live) return;
    if (p.project !== this.caller.project || p.runId !== sub.runId) return;
    this.send({ type: 'progress', progress: p });
  }

  /**
   * Delivery broke (the bus could not re-subscribe after a consumer reset):
   * stop it and tell the client, which can subscribe again with `fromSeq`
   * set to the last seq it saw + 1 and miss nothing.
   */
  private onEnd(sub: Subscription, cause: unknown): void {
    if (sub.cancelled || this.closed) return;
    this.drop(sub);
    void sub.stop?.().catch(() => undefined);
    this.sendError(
      new MuseError('MUSE_ERR_UNAVAILABLE', `The event stream for "${sub.runId}" ended; subscribe again with fromSeq ${sub.lastSeq + 1}`, { cause }),
      sub.runId,
    );
  }

  private async unsubscribe(runId: string): Promise<void> {
    const sub = this.subs.get(runId);
    if (!sub) return this.sendError(new MuseError('MUSE_ERR_REQUEST_INVALID', `Not subscribed to "${runId}"`), runId);
    this.drop(sub);
    await sub.stop?.();
  }

  private drop(sub: Subscription): void {
    sub.cancelled = true;
    if (this.subs.get(sub.runId) === sub) this.subs.delete(sub.runId);
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  /** Stops every subscription; called when the socket closes, for whatever reason. */
  async close(): Promise<void> {
    this.closed = true;
    const subs = [...this.subs.values()];
    this.subs.clear();
    await Promise.all(subs.map(async (s) => {
      s.cancelled = true;
      await s.stop?.();
    }));
  }

  private send(msg: StreamServerMessage): void {
    if (this.closed) return;
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      // A client that does not read would make us hold its whole backlog in memory.
      this.socket.close(CLOSE_CODES.tryAgainLater, 'client too slow; reconnect with fromSeq');
      void this.close();
      return;
    }
    this.socket.send(JSON.stringify(msg));
  }

  private sendError(err: MuseError, runId?: string): void {
    const error: ErrorBody = { code: err.code, message: err.message, retryable: err.retryable };
    if (err.details !== undefined) error.details = err.details;
    this.send({ type: 'error', error, ...(runId !== undefined ? { runId } : {}) });
  }
}

/**
 * One WebSocket to the gateway's `/v1/stream`, shared by several run
 * subscriptions (one per run id). Each subscription starts at a sequence
 * number and is resumed there after a dropped connection, so a listener
 * sees every event from `fromSeq` on, once, in order.
 */
import type { ErrorBody, RunEvent, StreamServerMessage } from '@muse/contracts';
import type { MuseApiClient } from './muse-api.client.js';

export interface RunListener {
  onEvent(event: RunEvent): void;
  /** The subscription ended for good (the run is not visible, the credential was revoked). */
  onError(error: ErrorBody): void;
}

interface Subscription {
  listener: RunListener;
  /** Next sequence number wanted. */
  nextSeq: number;
}

/** Reconnect back-off after a dropped connection, in ms: doubles from the first to the last. */
const RECONNECT_MS = { first: 250, max: 5_000 } as const;
/** Failed reconnects in a row after which the subscriptions end with MUSE_ERR_UNAVAILABLE (about a minute). */
const MAX_RECONNECT_FAILURES = 15;
/** Close code the gateway uses for a credential revoked since the handshake. */
const POLICY_VIOLATION = 1008;

export class RunStream {
  private ws: WebSocket | undefined;
  private opening: Promise<WebSocket> | undefined;
  private readonly subs = new Map<string, Subscription>();
  private closed = false;
  private backoffMs: number = RECONNECT_MS.first;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(private readonly api: MuseApiClient) {}

  /** Follows `runId` from `fromSeq` on; returns the function that stops following it. */
  async subscribe(runId: string, fromSeq: number, listener: RunListener): Promise<() => void> {
    if (this.closed) throw new Error('the run stream is closed');
    if (this.subs.has(runId)) throw new Error(`already following ${runId}`);
    const sub: Subscription = { listener, nextSeq: Math.max(1, fromSeq) };
    this.subs.set(runId, sub);
    try {
      const ws = await this.connect();
      if (this.subs.get(runId) === sub) ws.send(JSON.stringify({ op: 'subscribe', runId, fromSeq: sub.nextSeq }));
    } catch (err) {
      this.subs.delete(runId);
      throw err;
    }
    return () => this.unsubscribe(runId, sub);
  }

  get size(): number {
    return this.subs.size;
  }

  close(): void {
    this.closed = true;
    this.subs.clear();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.ws?.close();
    this.ws = undefined;
  }

  private unsubscribe(runId: string, sub: Subscription): void {
    if (this.subs.get(runId) !== sub) return;
    this.subs.delete(runId);
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op: 'unsubscribe', runId }));
  }

  private connect(): Promise<WebSocket> {
    if (this.ws?.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    this.opening ??= new Promise<WebSocket>((resolve, reject) => {
      // Node's WebSocket (undici) takes handshake headers, so the credential never goes in the URL.
      const ws = new WebSocket(this.api.streamUrl(), { headers: this.api.authHeaders() });
      ws.addEventListener('open', () => {
        this.opening = undefined;
        this.ws = ws;
        this.backoffMs = RECONNECT_MS.first;
        this.failures = 0;
        resolve(ws);
      }, { once: true });
      ws.addEventListener('error', () => {
        if (this.ws === ws) return;
        this.opening = undefined;
        reject(new Error(`cannot open the event stream at ${this.api.streamUrl()}`));
      }, { once: true });
      ws.addEventListener('message', (m) => this.onMessage(String(m.data)));
      ws.addEventListener('close', (e) => this.onClose(ws, e.code));
    });
    return this.opening;
  }

  private onMessage(text: string): void {
    let msg: StreamServerMessage;
    try {
      msg = JSON.parse(text) as StreamServerMessage;
    } catch {
      return;
    }
    if (msg.type === 'event') {
      const sub = this.subs.get(msg.event.runId);
      if (!sub || msg.event.seq < sub.nextSeq) return;
      sub.nextSeq = msg.event.seq + 1;
      sub.listener.onEvent(msg.event);
    } else if (msg.type === 'error' && msg.runId !== undefined) {
      const sub = this.subs.get(msg.runId);
      if (!sub) return;
      this.subs.delete(msg.runId);
      sub.listener.onError(msg.error);
    }
  }

  private onClose(ws: WebSocket, code: number): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    if (this.closed || this.subs.size === 0) return;
    if (code === POLICY_VIOLATION) return this.endAll({ code: 'MUSE_ERR_AUTH_REQUIRED', message: 'The credential is no longer valid', retryable: false });
    this.retryLater();
  }

  private retryLater(): void {
    if (++this.failures > MAX_RECONNECT_FAILURES) {
      return this.endAll({ code: 'MUSE_ERR_UNAVAILABLE', message: `The event stream at ${this.api.streamUrl()} stayed unreachable`, retryable: true });
    }
    this.reconnectTimer = setTimeout(() => void this.resubscribe(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_MS.max);
  }

  private endAll(error: ErrorBody): void {
    const subs = [...this.subs.values()];
    this.subs.clear();
    for (const s of subs) s.listener.onError(error);
  }

  private async resubscribe(): Promise<void> {
    if (this.closed || this.subs.size === 0) return;
    let ws: WebSocket;
    try {
      ws = await this.connect();
    } catch {
      return this.retryLater();
    }
    for (const [runId, sub] of this.subs) ws.send(JSON.stringify({ op: 'subscribe', runId, fromSeq: sub.nextSeq }));
  }
}

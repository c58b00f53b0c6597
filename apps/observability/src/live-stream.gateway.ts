/**
 * `/v1/live`: the dashboard's WebSocket. On connect it sends the whole
 * snapshot, then pushes every run event the live view applies (with the run as
 * it now stands and the counters) as soon as it is applied, and the agents and
 * queue depths after every poll. Each message is serialized once and sent to
 * every client.
 *
 * Like `/v1/snapshot` it is read-only and open (the observability port is an
 * operator's port, as `/metrics` is). `ws` runs with `noServer` on the same
 * HTTP server as the Nest routes.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import { WebSocketServer, type WebSocket } from 'ws';
import { LOGGER, type Logger } from '@muse/telemetry';
import { LiveViewService, type LiveChange } from './live-view.service.js';

export const LIVE_STREAM_PATH = '/v1/live';

/** How often every client is pinged; one that missed the previous ping is dropped, in ms. */
const HEARTBEAT_MS = 30_000;
/**
 * A client with more than this many bytes queued is too slow to follow: it is
 * closed (1013, try again later) and reconnects to a fresh snapshot, instead
 * of the server buffering without bound.
 */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Connections served at once; more are refused with 503. */
const MAX_CLIENTS = 256;

/** Messages the page gets; `sentAt` is the server's clock when the message was built. */
export type LiveMessage =
  | { type: 'snapshot'; sentAt: string; snapshot: ReturnType<LiveViewService['snapshot']> }
  | ({ type: 'event'; sentAt: string } & Extract<LiveChange, { kind: 'event' }> & ReturnType<LiveViewService['counters']>)
  | ({ type: 'state'; sentAt: string } & Pick<ReturnType<LiveViewService['snapshot']>, 'generatedAt' | 'agents' | 'queues'> & ReturnType<LiveViewService['counters']>);

@Injectable()
export class LiveStreamGateway {
  private wss: WebSocketServer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private unlisten: (() => void) | undefined;
  private readonly alive = new Map<WebSocket, boolean>();

  constructor(
    @Inject(LiveViewService) private readonly live: LiveViewService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  attach(server: Server): void {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.unlisten = this.live.listen((change) => this.broadcast(change));
    this.heartbeat = setInterval(() => this.pingAll(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get clients(): number {
    return this.alive.size;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.logger.debug({ err }, 'live upgrade socket error'));
    // The path may sit behind a prefix (a reverse proxy): match its end, as the page asks relative to itself.
    const path = new URL(req.url ?? '/', 'http://observability').pathname;
    if (!path.endsWith(LIVE_STREAM_PATH) || !this.wss) return refuse(socket, 404, 'Not Found');
    if (this.alive.size >= MAX_CLIENTS) return refuse(socket, 503, 'Service Unavailable');
    const wss = this.wss;
    wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
  }

  private onConnection(ws: WebSocket): void {
    this.alive.set(ws, true);
    ws.on('pong', () => this.alive.set(ws, true));
    ws.on('error', (err) => this.logger.debug({ err }, 'live websocket error'));
    // The page sends nothing; whatever it sends is ignored.
    ws.once('close', () => this.alive.delete(ws));
    const first: LiveMessage = { type: 'snapshot', sentAt: new Date().toISOString(), snapshot: this.live.snapshot() };
    ws.send(JSON.stringify(first));
  }

  private broadcast(change: LiveChange): void {
    if (this.alive.size === 0) return;
    const sentAt = new Date().toISOString();
    let msg: LiveMessage;
    if (change.kind === 'event') {
      msg = { type: 'event', sentAt, ...change, ...this.live.counters() };
    } else {
      const { generatedAt, agents, queues } = this.live.snapshot();
      msg = { type: 'state', sentAt, generatedAt, agents, queues, ...this.live.counters() };
    }
    const text = JSON.stringify(msg);
    for (const ws of this.alive.keys()) {
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        ws.close(1013, 'too slow; reconnect');
        continue;
      }
      ws.send(text);
    }
  }

  private pingAll(): void {
    for (const [ws, ok] of this.alive) {
      if (!ok) {
        ws.terminate();
        continue;
      }
      this.alive.set(ws, false);
      ws.ping();
    }
  }

  /** On shutdown: tell every page to go away (1001); they reconnect to another replica or when this one is back. */
  async closeAll(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.unlisten?.();
    for (const ws of this.alive.keys()) ws.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

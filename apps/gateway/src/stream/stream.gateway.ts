/**
 * The `/v1/stream` WebSocket endpoint, on the same HTTP server as the REST
 * API. `ws` runs with `noServer`, so the handshake passes through
 * `authorizeUpgrade` first: the one place credentials will be checked.
 */
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Gauge } from 'prom-client';
import { MuseError, StepProgressSchema, museNames, type GatewayConfig } from '@muse/contracts';
import type { JetStreamBus } from '@muse/messaging';
import { LOGGER, MuseMetrics, type Logger } from '@muse/telemetry';
import { AuditLog } from '../auth/audit-log.service.js';
import { Authenticator, bearerToken } from '../auth/authenticator.service.js';
import { RateLimits } from '../auth/rate-limits.service.js';
import { PROJECT_HEADER, hasScope, type Caller } from '../caller/caller.js';
import { BUS, GATEWAY_CONFIG } from '../gateway.tokens.js';
import { toHttpError } from '../http/http-error.mapper.js';
import { RunStore } from '../runs/run-store.service.js';
import { CLOSE_CODES, DEFAULT_STREAM_LIMITS, StreamSession, sendPerTick } from './stream-session.js';
import { STREAM_PATH } from './stream-path.js';

/** How often the server pings each client; one that missed the previous ping is dropped, in ms. */
const HEARTBEAT_MS = 30_000;

/**
 * The credential and project of a handshake: `Authorization: Bearer <key>`
 * and `Muse-Project`, or (browsers cannot set handshake headers)
 * `?access_token=<key>` and `?project=<name>`. The header wins when both are sent.
 */
export function handshakeCredentials(req: IncomingMessage): { token: string | undefined; project: string | undefined } {
  const url = new URL(req.url ?? '/', 'http://gateway');
  const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  return {
    token: bearerToken(header(req.headers.authorization)) ?? (url.searchParams.get('access_token') || undefined),
    project: header(req.headers[PROJECT_HEADER]) ?? (url.searchParams.get('project') || undefined),
  };
}

/**
 * Decides who opens a stream, from the handshake request alone, with the same
 * rules as REST (credential, project, `read` scope, rate limits); throws a
 * MuseError to refuse, before any WebSocket message is exchanged.
 */
export async function authorizeUpgrade(req: IncomingMessage, auth: Authenticator, limits: RateLimits): Promise<Caller> {
  const { token, project } = handshakeCredentials(req);
  const ip = req.socket.remoteAddress ?? 'unknown';
  await limits.admitAddress(ip);
  let caller: Caller;
  try {
    caller = await auth.resolve(token, project);
  } catch (err) {
    if (err instanceof MuseError && err.status === 401) await limits.authFailed(ip);
    throw err;
  }
  if (!hasScope(caller.scopes, 'read')) throw new MuseError('MUSE_ERR_AUTH_FORBIDDEN', 'The stream needs the "read" scope', { details: { required: 'read' } });
  await limits.consume(caller);
  return caller;
}

@Injectable()
export class StreamGateway {
  private wss: WebSocketServer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly sessions = new Map<WebSocket, { session: StreamSession; alive: boolean }>();
  private readonly connections: Gauge;
  /** Other WebSocket endpoints on the same HTTP server (it has one `upgrade` event), by path. */
  private readonly routes = new Map<string, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();

  constructor(
    @Inject(BUS) private readonly bus: JetStreamBus,
    @Inject(RunStore) private readonly runs: RunStore,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(MuseMetrics) metrics: MuseMetrics,
    @Inject(Authenticator) private readonly auth: Authenticator,
    @Inject(RateLimits) private readonly limits: RateLimits,
    @Inject(AuditLog) private readonly audit: AuditLog,
  ) {
    this.connections = metrics.gauge('muse_gateway_ws_connections', 'Open WebSocket connections on /v1/stream');
  }

  attach(server: Server): void {
    // maxPayload: a frame above the body limit closes the connection with 1009.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.config.MUSE_MAX_BODY_BYTES });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.heartbeat = setInterval(() => this.pingAll(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Serves another WebSocket endpoint (`/v1/agents/connect`) from the same upgrade event. */
  route(path: string, handler: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): void {
    this.routes.set(path, handler);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.logger.debug({ err }, 'upgrade socket error'));
    const path = new URL(req.url ?? '/', 'http://gateway').pathname;
    const other = this.routes.get(path);
    if (other) return other(req, socket, head);
    if (path !== STREAM_PATH || !this.wss) {
      return rejectUpgrade(socket, new MuseError('MUSE_ERR_ROUTE_NOT_FOUND', `No WebSocket endpoint at ${path}; use ${STREAM_PATH}`));
    }
    upgradeWhenAuthorized(this.wss, req, socket, head, authorizeUpgrade(req, this.auth, this.limits), this.audit, 'ws.connect', (ws, caller) => this.onConnection(ws, caller, req));
  }

  private onConnection(ws: WebSocket, caller: Caller, req: IncomingMessage): void {
    const { token, project } = handshakeCredentials(req);
    const session = new StreamSession(
      sendPerTick(ws, req.socket),
      caller,
      {
        // Every subscription re-checks the credential: a key revoked (or expired) since the handshake ends the stream (1008).
        runVisible: async (runProject, runId) => {
          try {
            await this.auth.resolve(token, project);
          } catch {
            ws.close(CLOSE_CODES.policyViolation, 'credential no longer valid');
            return false;
          }
          return (await this.runs.find(runProject, runId)) !== null;
        },
        // The bus re-subscribes by itself after a consumer reset; only a failure to do so ends the stream.
        subscribe: (runId, onEvent, from, onEnd) =>
          this.bus.subscribeRunEvents(runId, onEvent, from, (err, stage) => {
            if (stage === 'resubscribe') onEnd(err);
          }),
        // Live step progress: core NATS, at-most-once; a message that does not parse is dropped.
        subscribeProgress: (runId, onProgress) =>
          this.bus.subscribeUntil(museNames(this.config.MUSE_NAMESPACE).stepProgressSubject(runId), (payload) => {
            const p = StepProgressSchema.safeParse(payload);
            if (p.success) onProgress(p.data);
          }),
      },
      DEFAULT_STREAM_LIMITS,
    );
    const entry = { session, alive: true };
    this.sessions.set(ws, entry);
    this.connections.inc();
    ws.on('pong', () => (entry.alive = true));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      session.handle(isBinary ? null : rawText(data)).catch((err: unknown) => this.logger.error({ err }, 'stream message failed'));
    });
    ws.on('error', (err) => this.logger.debug({ err }, 'websocket error'));
    ws.once('close', () => {
      this.sessions.delete(ws);
      this.connections.dec();
      session.close().catch((err: unknown) => this.logger.warn({ err }, 'stopping stream subscriptions'));
    });
  }

  private pingAll(): void {
    for (const [ws, entry] of this.sessions) {
      if (!entry.alive) {
        ws.terminate();
        continue;
      }
      entry.alive = false;
      ws.ping();
    }
  }

  /** On shutdown: tell every client to go away (1001) and stop their consumers while NATS is still up. */
  async closeAll(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const sessions = [...this.sessions.entries()];
    for (const [ws] of sessions) ws.close(CLOSE_CODES.goingAway, 'server shutting down');
    await Promise.all(sessions.map(([, e]) => e.session.close()));
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** Answers a refused handshake with a plain HTTP response in the Muse error shape. */
/**
 * Finishes a WebSocket upgrade once `authorized` settles: the connection on success; on a refusal an HTTP error
 * answer on the raw socket, and an audit record for a denied credential, scope, rate or project.
 */
export function upgradeWhenAuthorized<T>(
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  authorized: Promise<T>,
  audit: Pick<AuditLog, 'record'>,
  action: string,
  onConnection: (ws: WebSocket, who: T) => void,
): void {
  authorized.then(
    (who) => {
      if (socket.destroyed) return;
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, who));
    },
    (err: unknown) => {
      const { status, body } = toHttpError(err);
      if (status === 401 || status === 403 || status === 429 || body.error.code === 'MUSE_ERR_PROJECT_NOT_FOUND') {
        audit.record({ time: new Date().toISOString(), principal: 'anonymous', action, outcome: 'denied', status, code: body.error.code });
      }
      rejectUpgrade(socket, err);
    },
  );
}

export function rejectUpgrade(socket: Duplex, err: unknown): void {
  const { status, body } = toHttpError(err);
  const json = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(json)}\r\n` +
      'Connection: close\r\n\r\n' +
      json,
  );
}

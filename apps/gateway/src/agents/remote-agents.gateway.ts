/**
 * WebSocket `/v1/agents/connect`: remote agents (a coding agent on a laptop,
 * a CI job) take and finish step jobs through the gateway. The protocol is
 * in `@muse/contracts` (`remote-agent.schema.ts`); `muse agent` is the
 * reference client; each agent is a RemoteAgentSession.
 *
 * Only a credential with the `agent` scope connects (any other gets 403 at
 * the handshake, and an agent-only key gets 403 on every REST route, since
 * `agent` includes no other scope). The agent is handed jobs of its key's
 * projects only: the `Muse-Project` header (or `?project=`) narrows that to one.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Counter, Gauge } from 'prom-client';
import {
  ALL_PROJECTS,
  MuseError,
  RemoteAgentClientMessageSchema,
  toErrorBody,
  zodIssues,
  type GatewayConfig,
  type MuseNames,
  type RemoteAgentClientMessage,
} from '@muse/contracts';
import { ArtifactUploader, StepReportPublisher, type JetStreamBus } from '@muse/messaging';
import { createRedis, HeartbeatService } from '@muse/queues';
import { LOGGER, MuseMetrics, type Logger } from '@muse/telemetry';
import { AuditLog } from '../auth/audit-log.service.js';
import { Authenticator } from '../auth/authenticator.service.js';
import { RateLimits } from '../auth/rate-limits.service.js';
import { hasScope, type Caller } from '../caller/caller.js';
import { BUS, GATEWAY_CONFIG, NAMES, REDIS } from '../gateway.tokens.js';
import { handshakeCredentials, rejectUpgrade, upgradeWhenAuthorized } from '../stream/stream.gateway.js';
import { RemoteAgentSession, type RemoteAgentIdentity } from './remote-agent.session.js';

/** How often the agent should send `heartbeat` (and the gateway pings it, and beats for it in the registry), in ms. */
export const REMOTE_HEARTBEAT_MS = 2_000;
/** A connection silent (no frame, no pong) for this long is dropped (then the grace period runs), in ms. */
const SILENT_DROP_MS = 15_000;
/** The `hello` must come within this, in ms. */
const HELLO_TIMEOUT_MS = 10_000;
/** Lock of a job held for a remote agent; BullMQ renews it every half of this while the assignment is open, in ms. */
const JOB_LOCK_MS = 10_000;
/** A job of a project the agent may not see goes back to the queue for this long, in ms. */
const FOREIGN_DELAY_MS = 500;
/** The gateway's version, reported in the agent registry for the agents it serves. */
const VERSION = 'remote';

export interface AgentHandshake {
  caller: Caller;
  /** Whose jobs this connection is handed. */
  projects: Caller['projects'];
  token: string;
}

/**
 * Who connects, from the handshake alone: a valid credential with the `agent` scope; its projects, or the one the
 * handshake names. Refuses (throws a MuseError) before any WebSocket frame is exchanged.
 */
export async function authorizeAgentUpgrade(req: IncomingMessage, auth: Authenticator, limits: RateLimits, defaultProject: string): Promise<AgentHandshake> {
  const { token, project } = handshakeCredentials(req);
  const ip = req.socket.remoteAddress ?? 'unknown';
  await limits.admitAddress(ip);
  let caller: Caller;
  try {
    // A named project must be one of the credential's (else 404 like a missing one); without one, the default
    // project stands in for rate limiting, and the agent serves every project of its key.
    caller = project !== undefined ? await auth.resolve(token, project) : { ...(await auth.authenticate(token)), project: '' };
  } catch (err) {
    if (err instanceof MuseError && err.status === 401) await limits.authFailed(ip);
    throw err;
  }
  if (!hasScope(caller.scopes, 'agent')) throw new MuseError('MUSE_ERR_AUTH_FORBIDDEN', 'Remote agents need the "agent" scope', { details: { required: 'agent' } });
  if (caller.project === '') caller = { ...caller, project: caller.projects === ALL_PROJECTS ? defaultProject : caller.projects[0]! };
  await limits.consume(caller);
  return { caller, projects: project !== undefined ? [caller.project] : caller.projects, token: token! };
}

@Injectable()
export class RemoteAgentsGateway {
  private wss: WebSocketServer | undefined;
  private blocking: Redis | undefined;
  private readonly sessions = new Map<string, RemoteAgentSession>();
  private readonly live = new Map<WebSocket, { lastSeen: number; token: string }>();
  private readonly reports: StepReportPublisher;
  private readonly artifacts: ArtifactUploader;
  private readonly connected: Gauge;
  private readonly finished: Counter<'role' | 'outcome'>;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    @Inject(BUS) private readonly bus: JetStreamBus,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(MuseMetrics) metrics: MuseMetrics,
    @Inject(Authenticator) private readonly auth: Authenticator,
    @Inject(RateLimits) private readonly limits: RateLimits,
    @Inject(AuditLog) private readonly audit: AuditLog,
  ) {
    this.reports = new StepReportPublisher(bus, logger);
    this.artifacts = new ArtifactUploader(config.MUSE_ARTIFACT_STORE_URL);
    this.connected = metrics.gauge('muse_gateway_remote_agents', 'Remote agents connected on /v1/agents/connect');
    this.finished = metrics.counter('muse_gateway_remote_steps_total', 'Step attempts finished by remote agents', ['role', 'outcome']);
  }

  /** Starts serving: pings, credential re-checks, and run-stop notices passed on to the agents. */
  start(): void {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.config.MUSE_MAX_BODY_BYTES });
    this.timer = setInterval(() => void this.tick(), REMOTE_HEARTBEAT_MS);
    this.timer.unref();
    this.bus.subscribe(this.names.runStopSubjectWildcard, (payload) => {
      const p = payload as { runId?: unknown; status?: unknown };
      if (typeof p.runId !== 'string') return;
      for (const s of this.sessions.values()) s.stopRun(p.runId, typeof p.status === 'string' ? p.status : 'cancelled');
    });
  }

  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const wss = this.wss;
    if (!wss || this.closing) return rejectUpgrade(socket, new MuseError('MUSE_ERR_UNAVAILABLE', 'The gateway is shutting down'));
    const authorized = authorizeAgentUpgrade(req, this.auth, this.limits, this.config.MUSE_DEFAULT_PROJECT);
    upgradeWhenAuthorized(wss, req, socket, head, authorized, this.audit, 'ws.agent-connect', (ws, hs) => this.onConnection(ws, hs, req));
  }

  private onConnection(ws: WebSocket, hs: AgentHandshake, req: IncomingMessage): void {
    const entry = { lastSeen: Date.now(), token: hs.token };
    this.live.set(ws, entry);
    this.connected.inc();
    let session: RemoteAgentSession | undefined;
    const hello = setTimeout(() => ws.close(1008, 'no hello'), HELLO_TIMEOUT_MS);
    hello.unref();
    ws.on('pong', () => (entry.lastSeen = Date.now()));
    ws.on('error', (err) => this.logger.debug({ err }, 'remote agent websocket error'));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      entry.lastSeen = Date.now();
      const msg = this.parse(ws, isBinary ? null : rawText(data));
      if (!msg) return;
      if (msg.type === 'hello') {
        clearTimeout(hello);
        if (session) return this.error(ws, new MuseError('MUSE_ERR_REQUEST_INVALID', 'hello was already received'));
        session = this.welcome(ws, hs, msg, req);
        return;
      }
      if (!session) {
        ws.close(1008, 'hello first');
        return;
      }
      this.handle(ws, session, msg);
    });
    ws.once('close', () => {
      clearTimeout(hello);
      this.live.delete(ws);
      this.connected.dec();
      session?.detach(ws);
    });
  }

  private welcome(ws: WebSocket, hs: AgentHandshake, hello: Extract<RemoteAgentClientMessage, { type: 'hello' }>, req: IncomingMessage): RemoteAgentSession | undefined {
    const agentId = hello.agentId ?? `remote-${randomBytes(6).toString('hex')}`;
    const identity: RemoteAgentIdentity = {
      agentId,
      principal: hs.caller.principal,
      projects: hs.projects,
      name: hello.name,
      roles: [...new Set(hello.roles)],
      capabilities: hello.capabilities,
      concurrency: hello.concurrency,
      address: req.socket.remoteAddress ?? 'unknown',
    };
    let session = this.sessions.get(agentId);
    if (session?.finished) session = undefined;
    if (session && session.identity.principal !== identity.principal) {
      // An agent id is bound to the credential that first used it: another key cannot take over its assignments.
      this.error(ws, new MuseError('MUSE_ERR_AUTH_FORBIDDEN', `agent ${agentId} belongs to another credential`));
      ws.close(1008, 'agent id in use');
      return undefined;
    }
    if (!session) {
      session = new RemoteAgentSession(identity, {
        connection: this.blockingRedis(),
        names: this.names,
        reports: this.reports,
        artifacts: this.artifacts,
        progress: (p) => {
          try {
            this.bus.publish(this.names.stepProgressSubject(p.runId), p);
          } catch {
            // Best effort: progress is a view, the step's output is the record.
          }
        },
        beat: (id, counts) => {
          const hb = new HeartbeatService({
            redis: this.redis,
            bus: this.bus,
            names: this.names,
            identity: { agentId: id.agentId, roles: id.roles, pid: 0, host: id.name, concurrency: id.concurrency, startedAt: new Date().toISOString(), version: VERSION, remote: true, capabilities: id.capabilities },
            counts,
            intervalMs: REMOTE_HEARTBEAT_MS,
            logger: this.logger,
          });
          hb.start();
          return hb;
        },
        graceMs: this.config.MUSE_REMOTE_AGENT_GRACE_MS,
        lockDurationMs: JOB_LOCK_MS,
        foreignDelayMs: FOREIGN_DELAY_MS,
        observer: { finished: (role, outcome) => this.finished.inc({ role, outcome }) },
        logger: this.logger,
        onEnd: (id) => {
          if (this.sessions.get(id) === created) this.sessions.delete(id);
        },
      });
      const created = session;
      this.sessions.set(agentId, session);
    }
    session.attach(ws, identity, REMOTE_HEARTBEAT_MS);
    this.audit.record({ time: new Date().toISOString(), principal: hs.caller.principal, project: hs.caller.project, action: 'ws.agent-connect', target: agentId, outcome: 'allowed', status: 101 });
    return session;
  }

  private handle(ws: WebSocket, session: RemoteAgentSession, msg: Exclude<RemoteAgentClientMessage, { type: 'hello' }>): void {
    if (msg.type === 'heartbeat') {
      session.send({ type: 'heartbeat' });
      return;
    }
    const known =
      msg.type === 'progress' ? session.progress(msg.assignmentId, msg.text) : msg.type === 'complete' ? session.complete(msg.assignmentId, msg.output) : session.fail(msg.assignmentId, msg.error, msg.usage);
    // Late answers (after a timeout, a cancel or a takeover) are dropped; the agent is told so once.
    if (!known && msg.type !== 'progress') this.error(ws, new MuseError('MUSE_ERR_REQUEST_INVALID', `no open assignment ${msg.assignmentId}`), msg.assignmentId);
  }

  private parse(ws: WebSocket, text: string | null): RemoteAgentClientMessage | undefined {
    let json: unknown;
    try {
      if (text === null) throw new Error('binary frame');
      json = JSON.parse(text);
    } catch {
      this.error(ws, new MuseError('MUSE_ERR_REQUEST_MALFORMED_JSON', 'Send JSON text frames'));
      return undefined;
    }
    const parsed = RemoteAgentClientMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.error(ws, new MuseError('MUSE_ERR_REQUEST_INVALID', 'Not a remote agent message', { details: { issues: zodIssues(parsed.error) } }));
      return undefined;
    }
    return parsed.data;
  }

  private error(ws: WebSocket, err: unknown, assignmentId?: string): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'error', error: toErrorBody(err), ...(assignmentId !== undefined ? { assignmentId } : {}) }));
  }

  /** Pings every connection, drops the silent ones and those whose credential no longer works (revoked, expired). */
  private async tick(): Promise<void> {
    const now = Date.now();
    for (const [ws, entry] of this.live) {
      if (now - entry.lastSeen > SILENT_DROP_MS) {
        ws.terminate();
        continue;
      }
      ws.ping();
      try {
        await this.auth.authenticate(entry.token);
      } catch (err) {
        if (err instanceof MuseError && err.status === 401) ws.close(1008, 'credential no longer valid');
      }
    }
  }

  /** BullMQ's workers block on Redis: they get a connection of their own (the request one fails fast), opened on first use. */
  private blockingRedis(): Redis {
    if (!this.blocking) {
      this.blocking = createRedis(this.config.REDIS_URL, { connectionName: 'muse-gateway-remote-agents' });
      this.blocking.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'remote agents redis connection error'));
    }
    return this.blocking;
  }

  /** On shutdown: fail every open assignment as retryable (their reports stored while NATS is up), close every agent. */
  async closeAll(): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    const err = new MuseError('MUSE_ERR_AGENT_DISCONNECTED', 'the gateway the agent was connected to is shutting down');
    await Promise.all([...this.sessions.values()].map((s) => s.end(err)));
    for (const ws of this.live.keys()) ws.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
    if (this.blocking) await this.blocking.quit().catch(() => this.blocking?.disconnect());
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/**
 * MCP over Streamable HTTP at `/mcp`: one MCP server and transport per
 * session (`Mcp-Session-Id`), bound to the principal and project that opened
 * it. Each session's tools call this gateway's own REST API on loopback
 * with the credential of the request that last reached the session, so a
 * tool is scoped, rate-limited and audited exactly like the REST route it
 * uses (a `read` key's `submit_run` gets the REST 403, another project's run
 * the REST 404).
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { MuseError } from '@muse/contracts';
import type { MuseApiCredentials } from '@muse/mcp';
import { LOGGER, MuseMetrics, type Logger } from '@muse/telemetry';
import { bearerToken } from '../auth/authenticator.service.js';
import { authRequired, type Caller } from '../caller/caller.js';

/** A session nothing reached for this long is closed, in ms. @default 1 hour */
export const MCP_SESSION_IDLE_MS = 60 * 60 * 1000;
/** Sessions one gateway keeps; opening one more closes the least recently used. @default 1000 */
export const MCP_MAX_SESSIONS = 1000;
const SWEEP_MS = 60 * 1000;

export const MCP_SESSION_HEADER = 'mcp-session-id';

/** The MCP SDK and Muse's tools, loaded at the first `/mcp` request: a gateway nobody reaches over MCP does not carry them (about 25 MB). */
let mcpModules: Promise<typeof import('@modelcontextprotocol/sdk/server/streamableHttp.js') & typeof import('@modelcontextprotocol/sdk/types.js') & typeof import('@muse/mcp')> | undefined;
const loadMcp = () =>
  (mcpModules ??= (async () => ({
    ...(await import('@modelcontextprotocol/sdk/server/streamableHttp.js')),
    ...(await import('@modelcontextprotocol/sdk/types.js')),
    ...(await import('@muse/mcp')),
  }))());

interface Session {
  id: string | undefined;
  principal: string;
  project: string;
  credentials: MuseApiCredentials;
  server: McpServer;
  transport: StreamableHTTPServerTransport;
  lastSeen: number;
}

@Injectable()
export class McpSessions implements OnModuleDestroy {
  private readonly sessions = new Map<string, Session>();
  private readonly gauge: ReturnType<MuseMetrics['gauge']>;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(MuseMetrics) metrics: MuseMetrics,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.gauge = metrics.gauge('muse_gateway_mcp_sessions', 'Open MCP sessions at /mcp');
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Serves one request of `/mcp` (POST, GET or DELETE); the auth hook and the guard have admitted `caller`. */
  async handle(req: FastifyRequest, reply: FastifyReply, caller: Caller): Promise<void> {
    const header = req.headers[MCP_SESSION_HEADER];
    const sessionId = Array.isArray(header) ? header[0] : header;
    const token = bearerToken(Array.isArray(req.headers.authorization) ? req.headers.authorization[0] : req.headers.authorization);
    // The auth hook admitted a bearer credential, so there is one; fail closed all the same.
    if (token === undefined) throw authRequired();
    const { isInitializeRequest } = await loadMcp();
    let session: Session | undefined;
    if (sessionId !== undefined) {
      session = this.sessions.get(sessionId);
      // Another principal or project presenting the id is answered like an unknown id.
      if (!session || session.principal !== caller.principal || session.project !== caller.project) {
        throw new MuseError('MUSE_ERR_MCP_SESSION_NOT_FOUND', `No MCP session "${sessionId}"`);
      }
      session.credentials = { token, project: caller.project };
      session.lastSeen = Date.now();
    } else if (req.method === 'POST' && isInitializeRequest(req.body)) {
      session = await this.open(caller, token);
    } else {
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'Open an MCP session with an initialize request (POST, no Mcp-Session-Id), then send its Mcp-Session-Id');
    }
    // From here the SDK's transport writes the answer (JSON or an SSE stream) on the raw response.
    reply.hijack();
    await session.transport.handleRequest(req.raw, reply.raw, req.body);
  }

  /** Ends every session (on shutdown, so open SSE streams do not hold the HTTP server). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => this.close(s)));
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.sweeper);
    await this.closeAll();
  }

  private async open(caller: Caller, token: string): Promise<Session> {
    if (this.sessions.size >= MCP_MAX_SESSIONS) {
      const oldest = [...this.sessions.values()].sort((a, b) => a.lastSeen - b.lastSeen)[0];
      if (oldest) await this.close(oldest);
    }
    const { MuseApiClient, StreamableHTTPServerTransport, createMuseMcpServer, MUSE_MCP_VERSION } = await loadMcp();
    const api = new MuseApiClient(this.loopbackUrl(), () => session.credentials);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        session.id = id;
        this.sessions.set(id, session);
        this.gauge.set(this.sessions.size);
      },
      // A DELETE: the transport closes itself (and with it the server and its subscriptions) right after.
      onsessionclosed: () => this.forget(session),
    });
    const session: Session = {
      id: undefined,
      principal: caller.principal,
      project: caller.project,
      credentials: { token, project: caller.project },
      server: createMuseMcpServer({ api, version: MUSE_MCP_VERSION }),
      transport,
      lastSeen: Date.now(),
    };
    transport.onerror = (err) => this.logger.warn({ err, principal: caller.principal }, 'mcp transport error');
    await session.server.connect(transport);
    return session;
  }

  private forget(session: Session): void {
    if (session.id !== undefined && this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    this.gauge.set(this.sessions.size);
  }

  private async close(session: Session): Promise<void> {
    this.forget(session);
    await session.server.close().catch((err: unknown) => this.logger.warn({ err }, 'closing an mcp session'));
  }

  private sweep(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) if (now - s.lastSeen > MCP_SESSION_IDLE_MS) void this.close(s);
  }

  /** This gateway's own address: the tools call its REST API there. */
  private loopbackUrl(): string {
    const addr = this.adapterHost.httpAdapter.getHttpServer().address() as AddressInfo | string | null;
    if (addr === null || typeof addr === 'string') throw new Error('the gateway is not listening on a TCP port');
    const wildcard = addr.address === '0.0.0.0' || addr.address === '::';
    const host = wildcard ? '127.0.0.1' : addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}`;
  }
}

/** A small client of the gateway's REST API and WebSocket stream, used by the CLI and the launcher. */
import { readFileSync } from 'node:fs';
import type { ApiKeyView, PoolList, ProfileReport, ProfilingSession, ProjectView, RunEvent, RunView, Schedule } from '@muse/contracts';

export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}

export class GatewayClient {
  /** `apiKey`: sent as `Authorization: Bearer <key>` on every request and WebSocket handshake. */
  constructor(
    readonly baseUrl: string,
    private readonly apiKey?: string,
  ) {}

  private auth(): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {};
  }

  private async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: body === undefined ? { ...this.auth(), ...headers } : { 'content-type': 'application/json', ...this.auth(), ...headers },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
    } catch (err) {
      throw new GatewayError(0, 'MUSE_ERR_UNAVAILABLE', `cannot reach the gateway at ${this.baseUrl}: ${(err as Error).message}`);
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const e = (json as { error?: { code: string; message: string; details?: unknown } } | undefined)?.error;
      throw new GatewayError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? text, e?.details);
    }
    return json as T;
  }

  registerWorkflowFile(file: string): Promise<{ name: string; version: number }> {
    const text = readFileSync(file, 'utf8');
    const yaml = /\.ya?ml$/i.test(file);
    return this.call('POST', '/v1/workflows', text, { 'content-type': yaml ? 'application/yaml' : 'application/json' });
  }

  listWorkflows(): Promise<{ items: Array<{ name: string; latestVersion: number; description?: string }> }> {
    return this.call('GET', '/v1/workflows');
  }

  submitRun(body: Record<string, unknown>, idempotencyKey?: string): Promise<{ id: string; status: string }> {
    return this.call('POST', '/v1/runs', body, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }

  getRun(id: string): Promise<RunView> {
    return this.call('GET', `/v1/runs/${encodeURIComponent(id)}`);
  }

  listRuns(query: Record<string, string | undefined>): Promise<{ items: Array<Omit<RunView, 'steps' | 'input' | 'output'>>; nextCursor?: string }> {
    const q = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
    return this.call('GET', `/v1/runs${q.size ? `?${q}` : ''}`);
  }

  /** Starts a cluster-wide profiling session (admin credential for every project). */
  startProfiling(body: { maxSeconds?: number; cpuProfile?: boolean }): Promise<ProfilingSession> {
    return this.call('POST', '/v1/profiling/sessions', body);
  }

  /** Stops it; the report names the bottleneck. */
  stopProfiling(id: string): Promise<ProfileReport> {
    return this.call('DELETE', `/v1/profiling/sessions/${encodeURIComponent(id)}`);
  }

  createSchedule(body: { workflow: string; cron: string; timezone?: string; input?: Record<string, unknown>; version?: number }): Promise<Schedule> {
    return this.call('POST', '/v1/schedules', body);
  }

  listSchedules(): Promise<{ items: Schedule[] }> {
    return this.call('GET', '/v1/schedules');
  }

  deleteSchedule(id: string): Promise<{ id: string; deleted: true }> {
    return this.call('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
  }

  listDeadLetters(): Promise<{ items: Array<{ runId: string; stepId: string; index?: number; attempts: number; error: { code: string; message: string }; at: string }> }> {
    return this.call('GET', '/v1/dead-letters');
  }

  replayRun(id: string, version?: number): Promise<{ id: string; status: string; replayOf: string; workflow: { name: string; version: number } }> {
    return this.call('POST', `/v1/runs/${encodeURIComponent(id)}/replay`, version !== undefined ? { version } : {});
  }

  raiseBudget(id: string, addTokens?: number, addCost?: number): Promise<{ id: string; status: string }> {
    return this.call('POST', `/v1/runs/${encodeURIComponent(id)}/budget`, { ...(addTokens ? { addTokens } : {}), ...(addCost ? { addCost } : {}) });
  }

  rerunRun(id: string, fromStep: string): Promise<{ id: string; status: string }> {
    return this.call('POST', `/v1/runs/${encodeURIComponent(id)}/rerun`, { fromStep });
  }

  /** `pause`, `resume` or `retry` a run. */
  controlRun(id: string, action: 'pause' | 'resume' | 'retry', reason?: string): Promise<{ id: string; status: string }> {
    return this.call('POST', `/v1/runs/${encodeURIComponent(id)}/${action}`, reason ? { reason } : {});
  }

  decideApproval(id: string, stepId: string, decision: 'approve' | 'reject', comment?: string): Promise<{ id: string; stepId: string; decision: string }> {
    return this.call('POST', `/v1/runs/${encodeURIComponent(id)}/approvals/${encodeURIComponent(stepId)}`, { decision, ...(comment ? { comment } : {}) });
  }

  cancelRun(id: string, reason?: string, compensate?: boolean): Promise<{ id: string; status: string }> {
    return this.call('POST', `/v1/runs/${encodeURIComponent(id)}/cancel`, { ...(reason ? { reason } : {}), ...(compensate ? { compensate: true } : {}) });
  }

  listPools(): Promise<PoolList> {
    return this.call('GET', '/v1/pools');
  }

  createProject(name: string, description?: string): Promise<ProjectView> {
    return this.call('POST', '/v1/projects', { name, ...(description !== undefined ? { description } : {}) });
  }

  listProjects(): Promise<{ items: ProjectView[] }> {
    return this.call('GET', '/v1/projects');
  }

  createApiKey(body: { name: string; projects: string[]; scopes: string[]; expiresAt?: string }): Promise<ApiKeyView & { key: string }> {
    return this.call('POST', '/v1/api-keys', body);
  }

  listApiKeys(): Promise<{ items: ApiKeyView[] }> {
    return this.call('GET', '/v1/api-keys');
  }

  revokeApiKey(id: string): Promise<ApiKeyView> {
    return this.call('DELETE', `/v1/api-keys/${encodeURIComponent(id)}`);
  }

  runEvents(id: string): Promise<{ items: RunEvent[] }> {
    return this.call('GET', `/v1/runs/${encodeURIComponent(id)}/events`);
  }

  /**
   * Streams a run's events over the WebSocket until the run ends; resolves
   * with the final view. `onEvent` sees every event, in order.
   */
  async watchRun(id: string, onEvent: (ev: RunEvent) => void, timeoutMs = 0): Promise<RunView> {
    const wsUrl = `${this.baseUrl.replace(/^http/, 'ws')}/v1/stream`;
    const last = await new Promise<number>((resolve, reject) => {
      // Node's WebSocket (undici) takes handshake headers; a browser would use `?access_token=` instead.
      const ws = new WebSocket(wsUrl, { headers: this.auth() });
      const timer = timeoutMs > 0 ? setTimeout(() => fail(new Error(`run ${id} did not finish within ${timeoutMs} ms`)), timeoutMs) : undefined;
      const fail = (err: Error) => {
        if (timer) clearTimeout(timer);
        ws.close();
        reject(err);
      };
      ws.addEventListener('open', () => ws.send(JSON.stringify({ op: 'subscribe', runId: id })));
      ws.addEventListener('error', () => fail(new GatewayError(0, 'MUSE_ERR_UNAVAILABLE', `WebSocket error on ${wsUrl}`)));
      ws.addEventListener('message', (m) => {
        const msg = JSON.parse(String(m.data)) as { type: string; event?: RunEvent; error?: { code: string; message: string } };
        if (msg.type === 'error') return fail(new GatewayError(0, msg.error?.code ?? 'ERR', msg.error?.message ?? 'stream error'));
        if (msg.type !== 'event' || !msg.event) return;
        onEvent(msg.event);
        if (msg.event.type === 'run.completed' || msg.event.type === 'run.failed' || msg.event.type === 'run.cancelled') {
          if (timer) clearTimeout(timer);
          ws.close();
          resolve(msg.event.seq);
        }
      });
    });
    return this.viewAtLeast(id, last);
  }

  /**
   * The run's view once it has folded event `seq`. The coordinator writes the view just after it appends the events,
   * so a client that has seen an event can ask for the view a moment before it shows that event; this waits for it
   * (a few reads, about 3 s at most), then gives the newest view there is.
   */
  async viewAtLeast(id: string, seq: number): Promise<RunView> {
    let view = await this.getRun(id);
    for (let wait = 5; view.seq < seq && wait <= 1_280; wait *= 2) {
      await new Promise((r) => setTimeout(r, wait));
      view = await this.getRun(id);
    }
    return view;
  }
}

/**
 * `muse agent --role <role> -- <command...>`: the reference remote agent.
 *
 * It connects to the gateway's `/v1/agents/connect` with the CLI's API key
 * (scope `agent`), and for each step assigned to it runs `<command>` with the
 * rendered prompt (agent steps) or command (shell steps) on stdin and the
 * step's context in the environment (`MUSE_RUN_ID`, `MUSE_STEP_ID`,
 * `MUSE_ATTEMPT`, `MUSE_ROLE`, `MUSE_MODEL`, …), streams its stdout as
 * progress, and completes the step with `{text: stdout, exitCode}` (a
 * non-zero exit fails it, retryably). After a drop it reconnects with the same
 * agent id, so a step still running (or finished while away) is kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import WebSocket from 'ws';
import { REMOTE_AGENT_PATH, RemoteAgentServerMessageSchema, type RemoteAgentClientMessage, type RemoteAssignment } from '@muse/contracts';

export interface AgentCommandOptions {
  gateway: string;
  apiKey: string | undefined;
  roles: string[];
  capabilities: string[];
  concurrency: number;
  name: string;
  /** Resume as this agent (else the gateway names it; reconnects reuse that name). */
  agentId?: string;
  /** `Muse-Project`: take work of this project only (a key with several). */
  project?: string;
  /** The command and its arguments. */
  command: string[];
  /** Largest stdout kept and sent back, in bytes (the gateway's frame limit is 1 MiB by default). @default 524_288 */
  maxOutputBytes?: number;
  /** Shortest gap between two progress messages of one step, in ms. @default 100 */
  progressIntervalMs?: number;
  log?: (line: string) => void;
}

type Outcome = Extract<RemoteAgentClientMessage, { type: 'complete' | 'fail' }>;

interface Running {
  child: ChildProcess;
  /** Set once the command ended: sent now, or after a reconnect if the gateway still holds the assignment. */
  result?: Outcome;
  cancelled: boolean;
}

/** Reconnect backoff, in ms. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;
const KEPT_STDERR_CHARS = 4_000;

export const DEFAULT_AGENT_NAME = `muse-agent@${hostname()}`;

/** Runs until SIGINT/SIGTERM (exit code 0) or a refused credential (1). */
export async function runAgent(o: AgentCommandOptions): Promise<number> {
  const log = o.log ?? ((line: string) => void process.stderr.write(`muse agent: ${line}\n`));
  if (!o.apiKey) {
    log('no API key: pass --api-key or set MUSE_API_KEY (a key with the "agent" scope)');
    return 1;
  }
  if (o.command.length === 0) {
    log('no command: muse agent --role <role> -- <command...>');
    return 1;
  }
  const url = `${o.gateway.replace(/^http/, 'ws')}${REMOTE_AGENT_PATH}`;
  const headers: Record<string, string> = { authorization: `Bearer ${o.apiKey}`, ...(o.project ? { 'muse-project': o.project } : {}) };
  const maxOutput = o.maxOutputBytes ?? 524_288;
  const progressMs = o.progressIntervalMs ?? 100;
  const running = new Map<string, Running>();
  let agentId = o.agentId;
  let ws: WebSocket | undefined;
  let stopping = false;
  let beat: NodeJS.Timeout | undefined;
  let reconnect: NodeJS.Timeout | undefined;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));

  const send = (msg: RemoteAgentClientMessage): boolean => {
    if (ws?.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  };

  const finish = (id: string, r: Running, outcome: Outcome): void => {
    r.result = outcome;
    if (r.cancelled) {
      running.delete(id);
      return;
    }
    // Kept until the gateway acknowledges it (or drops the assignment): a drop in between resends it after `welcome`.
    send(outcome);
  };

  const start = (a: RemoteAssignment): void => {
    const existing = running.get(a.assignmentId);
    if (existing) {
      // Sent again after a reconnect: the command is running (or done) already; never run an attempt twice.
      if (existing.result) send(existing.result);
      return;
    }
    const j = a.job;
    log(`step ${j.runId}/${j.stepId} attempt ${j.attempt} (${j.kind}, role ${j.role})`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      MUSE_ASSIGNMENT_ID: a.assignmentId,
      MUSE_RUN_ID: j.runId,
      MUSE_PROJECT: j.project,
      MUSE_STEP_ID: j.stepId,
      MUSE_ATTEMPT: String(j.attempt),
      MUSE_ROLE: j.role,
      MUSE_STEP_KIND: j.kind,
      MUSE_TIMEOUT_MS: String(j.timeoutMs),
      MUSE_DEADLINE: a.deadline,
      ...(j.index !== undefined ? { MUSE_STEP_INDEX: String(j.index) } : {}),
      ...(j.model !== undefined ? { MUSE_MODEL: j.model } : {}),
      ...(j.seed !== undefined ? { MUSE_SEED: String(j.seed) } : {}),
    };
    // The API key is the agent's, not the step's.
    delete env.MUSE_API_KEY;
    const child = spawn(o.command[0]!, o.command.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const r: Running = { child, cancelled: false };
    running.set(a.assignmentId, r);
    let stdout = '';
    let stderr = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      timer = undefined;
      if (stdout.length > sent && send({ type: 'progress', assignmentId: a.assignmentId, text: stdout.slice(sent) })) sent = stdout.length;
    };
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (Buffer.byteLength(stdout) < maxOutput) stdout += chunk;
      timer ??= setTimeout(flush, progressMs);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-KEPT_STDERR_CHARS);
    });
    child.stdin!.on('error', () => undefined); // a command that does not read its stdin closes it early
    child.stdin!.end(j.prompt ?? j.command ?? '');
    child.on('error', (err) => finish(a.assignmentId, r, { type: 'fail', assignmentId: a.assignmentId, error: { code: 'MUSE_ERR_AGENT_FAILED', message: `could not run ${o.command[0]}: ${err.message}`, retryable: false } }));
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      flush();
      const text = Buffer.byteLength(stdout) > maxOutput ? Buffer.from(stdout).subarray(0, maxOutput).toString('utf8') : stdout;
      if (r.result) return; // 'error' came first
      if (code === 0) finish(a.assignmentId, r, { type: 'complete', assignmentId: a.assignmentId, output: { text, exitCode: 0, ...(stderr ? { stderr } : {}) } });
      else {
        const why = signal ? `was killed by ${signal}` : `exited with ${code}`;
        finish(a.assignmentId, r, {
          type: 'fail',
          assignmentId: a.assignmentId,
          error: { code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: `${o.command[0]} ${why}`, retryable: true, details: { exitCode: code, signal, stderr: stderr.slice(-1000) } },
        });
      }
      log(`step ${j.runId}/${j.stepId} attempt ${j.attempt} ${code === 0 ? 'done' : 'failed'}`);
    });
  };

  const cancel = (id: string, reason: string): void => {
    const r = running.get(id);
    if (!r) return;
    log(`assignment ${id} cancelled: ${reason}`);
    r.cancelled = true;
    if (r.result) running.delete(id);
    else r.child.kill('SIGTERM');
  };

  let delay = RECONNECT_MIN_MS;
  const connect = (): void => {
    if (stopping) return;
    const socket = new WebSocket(url, { headers });
    ws = socket;
    socket.on('open', () => {
      delay = RECONNECT_MIN_MS;
      socket.send(JSON.stringify({ type: 'hello', ...(agentId ? { agentId } : {}), name: o.name, roles: o.roles, capabilities: o.capabilities, concurrency: o.concurrency } satisfies RemoteAgentClientMessage));
    });
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        log(`the gateway refused the connection: HTTP ${res.statusCode} ${body.slice(0, 300)}`);
        // A refused credential will not change by retrying: stop. Anything else (a gateway restarting): try again.
        if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 404) {
          stopping = true;
          resolveExit(1);
        }
        socket.terminate();
      });
    });
    socket.on('message', (data) => {
      let msg;
      try {
        msg = RemoteAgentServerMessageSchema.parse(JSON.parse(String(data)));
      } catch (err) {
        log(`unreadable message from the gateway: ${(err as Error).message}`);
        return;
      }
      switch (msg.type) {
        case 'welcome': {
          agentId = msg.agentId;
          log(`connected as ${msg.agentId} (roles ${o.roles.join(',')}; projects ${msg.projects.join(',')}${msg.resumed.length ? `; resuming ${msg.resumed.length}` : ''})`);
          // Results of assignments the gateway no longer holds (grace period over) are dropped; the others follow as `assign`.
          // A step still running that the gateway gave up on (its next attempt may be elsewhere) is stopped.
          for (const [id, r] of running) {
            if (msg.resumed.includes(id)) continue;
            if (r.result) running.delete(id);
            else cancel(id, 'the gateway no longer holds this assignment');
          }
          if (beat) clearInterval(beat);
          beat = setInterval(() => send({ type: 'heartbeat' }), msg.heartbeatMs);
          beat.unref();
          break;
        }
        case 'assign':
          start(msg);
          break;
        case 'ack':
          running.delete(msg.assignmentId);
          break;
        case 'cancel':
          cancel(msg.assignmentId, msg.reason);
          break;
        case 'error':
          log(`gateway: ${msg.error.code}: ${msg.error.message}`);
          if (msg.assignmentId) running.delete(msg.assignmentId);
          break;
        case 'heartbeat':
          break;
      }
    });
    socket.on('error', (err) => log(`connection error: ${err.message}`));
    socket.on('close', (code, reason) => {
      if (beat) clearInterval(beat);
      beat = undefined;
      if (ws === socket) ws = undefined;
      if (stopping) return;
      log(`disconnected (${code}${reason.length ? ` ${reason.toString()}` : ''}); reconnecting in ${delay} ms`);
      reconnect = setTimeout(connect, delay);
      delay = Math.min(RECONNECT_MAX_MS, delay * 2);
    });
  };

  const stop = (): void => {
    if (stopping) {
      resolveExit(0);
      return;
    }
    stopping = true;
    if (reconnect) clearTimeout(reconnect);
    log('stopping: running steps are killed; the gateway fails them as retryable after its grace period');
    for (const r of running.values()) r.child.kill('SIGTERM');
    ws?.close(1000, 'agent stopping');
    setTimeout(() => resolveExit(0), 200).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  connect();
  const code = await exited;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  for (const r of running.values()) if (!r.result) r.child.kill('SIGKILL');
  ws?.terminate();
  return code;
}

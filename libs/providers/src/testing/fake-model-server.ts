/**
 * `content_block_delta`Fake model servers on loopback that speak the real wire protocols —
 * OpenAI chat completions (`POST /v1/chat/completions`, JSON or SSE
 * `data:` chunks ending in `[DONE]`) and Anthropic messages
 * (`POST /v1/messages`, JSON or SSE named events) — so the adapters, the
 * failover chain and the end-to-end tests run against the official SDKs
 * without a network. Each server can be told to fail: an HTTP status (with
 * `Retry-After`), a hang (never answers), or a slow stream. With `tools` in
 * the request, it asks for the calls of the prompt's `::tool-call` script
 * (one round per response, counted from the calls already in the
 * conversation, as the deterministic provider does) or of an enqueued
 * `tool_calls` behaviour, streamed the way each API streams them, and its
 * final answer quotes the tool results it was sent.
 *
 * Test support only: nothing in a service imports this module.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { countTokens } from '../local-provider.js';
import { nextScriptedRound, type ConversationTurn, type ScriptedCall, type ToolCall, type ToolResult } from '../tool-calls.js';

export type FakeProtocol = 'openai' | 'anthropic';

/** What the server does with one request. */
export type FakeBehaviour =
  | { kind: 'ok'; text?: string }
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'hang' }
  /** Streams normally but waits this long before the first byte, in ms. */
  | { kind: 'slow'; delayMs: number; text?: string }
  /** Answers with these tool calls (whatever the prompt's `::tool-call` script says). */
  | { kind: 'tool_calls'; calls: ScriptedCall[] };

export interface FakeRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface FakeModelServerOptions {
  /** When set, requests without this key (Bearer for OpenAI, x-api-key for Anthropic) get 401. */
  apiKey?: string;
  /** Pause between streamed chunks, in ms. @default 0 */
  chunkDelayMs?: number;
}

export class FakeModelServer {
  /** Every request received, in order (including failed ones). */
  readonly requests: FakeRequest[] = [];
  private readonly queue: FakeBehaviour[] = [];
  private fallback: FakeBehaviour = { kind: 'ok' };
  private readonly open = new Set<ServerResponse>();
  /** Pause between streamed chunks, in ms; settable while the server runs. */
  chunkDelayMs: number;

  private constructor(
    readonly protocol: FakeProtocol,
    private readonly server: Server,
    private readonly opts: FakeModelServerOptions,
  ) {
    this.chunkDelayMs = opts.chunkDelayMs ?? 0;
  }

  static async start(protocol: FakeProtocol, opts: FakeModelServerOptions = {}): Promise<FakeModelServer> {
    const server = createServer();
    const self = new FakeModelServer(protocol, server, opts);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void self.handle(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return self;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The base URL an SDK takes: with `/v1` for OpenAI (the SDK appends `/chat/completions`), without for Anthropic. */
  get baseUrl(): string {
    return this.protocol === 'openai' ? `http://127.0.0.1:${this.port}/v1` : `http://127.0.0.1:${this.port}`;
  }

  /** What every request gets once the queue is empty. */
  respondWith(b: FakeBehaviour): void {
    this.fallback = b;
  }

  /** Behaviours for the next requests, one each, before the default. */
  enqueue(...b: FakeBehaviour[]): void {
    this.queue.push(...b);
  }

  /** The reply text the server gives a prompt (so tests can assert it). */
  static replyText(protocol: FakeProtocol, prompt: string): string {
    return `${protocol} says: ${prompt.replace(/\s+/g, ' ').trim().slice(0, 60)}`;
  }

  /** What a final answer appends for the tool results it was sent: ` | results: <call id>=<first 80 characters>; ...`. */
  static quoteResults(results: readonly ToolResult[]): string {
    return results.length === 0 ? '' : ` | results: ${results.map((r) => `${r.callId}=${r.isError ? 'ERROR ' : ''}${r.content.replace(/\s+/g, ' ').slice(0, 80)}`).join('; ')}`;
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.open.add(res);
    res.on('close', () => this.open.delete(res));
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      return this.error(res, 400, 'invalid JSON');
    }
    const path = (req.url ?? '').split('?')[0]!;
    this.requests.push({ path, headers: req.headers, body });
    const want = this.protocol === 'openai' ? '/v1/chat/completions' : '/v1/messages';
    if (req.method !== 'POST' || path !== want) return this.error(res, 404, `no route ${req.method} ${path}`);
    if (this.opts.apiKey !== undefined) {
      // Anthropic takes `x-api-key`; its SDK since 1.x sends the key as a Bearer token, which the API also accepts.
      const bearer = req.headers.authorization?.replace(/^Bearer /, '');
      const given = this.protocol === 'openai' ? bearer : (req.headers['x-api-key'] ?? bearer);
      if (given !== this.opts.apiKey) return this.error(res, 401, 'invalid api key');
    }
    if (this.protocol === 'anthropic' && !req.headers['anthropic-version']) return this.error(res, 400, 'anthropic-version header required');

    const b = this.queue.shift() ?? this.fallback;
    if (b.kind === 'hang') return; // never answers; the client's timeout or close ends it
    if (b.kind === 'status') return this.error(res, b.status, `fake failure ${b.status}`, b.retryAfter);
    if (b.kind === 'slow') await sleep(b.delayMs);
    if (res.destroyed) return;

    const model = typeof body['model'] === 'string' ? body['model'] : 'fake-model';
    const convo = wireConversation(this.protocol, body);
    const offered = Array.isArray(body['tools']) && body['tools'].length > 0;
    const calls =
      b.kind === 'tool_calls'
        ? b.calls.map((c, i) => ({ id: `${this.protocol === 'openai' ? 'call' : 'toolu'}_fake_${this.requests.length}_${i + 1}`, name: c.name, arguments: c.arguments }))
        : offered
          ? nextScriptedRound(convo.prompt, convo.turns)?.map((c) => ({ ...c, id: this.protocol === 'openai' ? c.id : c.id.replace(/^call_/, 'toolu_') }))
          : undefined;
    if (calls && calls.length > 0) {
      const usage = { input: countTokens(convo.prompt), output: countTokens(JSON.stringify(calls)) };
      if (body['stream'] === true) await this.streamToolCalls(res, model, calls, usage);
      else this.json(res, 200, this.protocol === 'openai' ? openAiToolCallMessage(model, calls, usage) : anthropicToolCallMessage(model, calls, usage));
      return;
    }
    const prompt = convo.results.length > 0 ? convo.prompt : promptOf(this.protocol, body);
    const text = (b.kind === 'ok' || b.kind === 'slow' ? b.text : undefined) ?? FakeModelServer.replyText(this.protocol, prompt) + FakeModelServer.quoteResults(convo.results);
    const usage = { input: countTokens(prompt), output: countTokens(text) };
    if (body['stream'] === true) await this.stream(res, model, text, usage);
    else this.json(res, 200, this.protocol === 'openai' ? openAiMessage(model, text, usage) : anthropicMessage(model, text, usage));
  }

  private async stream(res: ServerResponse, model: string, text: string, usage: { input: number; output: number }): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const pieces = text.match(/\S+\s*|\s+/g) ?? [];
    const send = async (event: string | undefined, data: unknown): Promise<void> => {
      if (res.destroyed) return;
      res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
      if (this.chunkDelayMs) await sleep(this.chunkDelayMs);
    };
    if (this.protocol === 'openai') {
      const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model, system_fingerprint: 'fp_fake' };
      await send(undefined, { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
      for (const p of pieces) await send(undefined, { ...base, choices: [{ index: 0, delta: { content: p }, finish_reason: null }] });
      await send(undefined, { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
      await send(undefined, { ...base, choices: [], usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output } });
      await send(undefined, '[DONE]');
    } else {
      await send('message_start', {
        type: 'message_start',
        message: { id: 'msg_fake', type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: usage.input, output_tokens: 1 } },
      });
      await send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      await send('ping', { type: 'ping' });
      for (const p of pieces) await send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } });
      await send('content_block_stop', { type: 'content_block_stop', index: 0 });
      await send('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: usage.output } });
      await send('message_stop', { type: 'message_stop' });
    }
    res.end();
  }

  private async streamToolCalls(res: ServerResponse, model: string, calls: ToolCall[], usage: { input: number; output: number }): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = async (event: string | undefined, data: unknown): Promise<void> => {
      if (res.destroyed) return;
      res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
      if (this.chunkDelayMs) await sleep(this.chunkDelayMs);
    };
    // Arguments arrive in two pieces, as real servers split them: the client must join them.
    const halves = (c: ToolCall): [string, string] => {
      const json = JSON.stringify(c.arguments ?? {});
      const cut = Math.ceil(json.length / 2);
      return [json.slice(0, cut), json.slice(cut)];
    };
    if (this.protocol === 'openai') {
      const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model, system_fingerprint: 'fp_fake' };
      await send(undefined, { ...base, choices: [{ index: 0, delta: { role: 'assistant', content: null }, finish_reason: null }] });
      for (const [i, c] of calls.entries()) {
        const [a, b] = halves(c);
        await send(undefined, { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: i, id: c.id, type: 'function', function: { name: c.name, arguments: a } }] }, finish_reason: null }] });
        await send(undefined, { ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: i, function: { arguments: b } }] }, finish_reason: null }] });
      }
      await send(undefined, { ...base, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] });
      await send(undefined, { ...base, choices: [], usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output } });
      await send(undefined, '[DONE]');
    } else {
      await send('message_start', {
        type: 'message_start',
        message: { id: 'msg_fake', type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: usage.input, output_tokens: 1 } },
      });
      for (const [i, c] of calls.entries()) {
        const [a, b] = halves(c);
        await send('content_block_start', { type: 'content_block_start', index: i, content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} } });
        await send('content_block_delta', { type: 'content_block_delta', index: i, delta: { type: 'input_json_delta', partial_json: a } });
        await send('content_block_delta', { type: 'content_block_delta', index: i, delta: { type: 'input_json_delta', partial_json: b } });
        await send('content_block_stop', { type: 'content_block_stop', index: i });
      }
      await send('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: usage.output } });
      await send('message_stop', { type: 'message_stop' });
    }
    res.end();
  }

  private error(res: ServerResponse, status: number, message: string, retryAfter?: string): void {
    const headers: Record<string, string> = {};
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    const body =
      this.protocol === 'openai'
        ? { error: { message, type: status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } }
        : { type: 'error', error: { type: status === 429 ? 'rate_limit_error' : status === 401 ? 'authentication_error' : status >= 500 ? 'api_error' : 'invalid_request_error', message } };
    this.json(res, status, body, headers);
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }
}

function promptOf(protocol: FakeProtocol, body: Record<string, unknown>): string {
  const messages = Array.isArray(body['messages']) ? (body['messages'] as Array<{ content?: unknown }>) : [];
  const last = messages.at(-1)?.content;
  if (typeof last === 'string') return last;
  if (Array.isArray(last)) return last.map((p: { text?: string }) => p.text ?? '').join('');
  return protocol;
}

/**
 * The first user prompt, the earlier rounds of tool calls and the results sent back, read from the wire messages of
 * either protocol (OpenAI: `assistant.tool_calls` and `role: tool`; Anthropic: `tool_use` and `tool_result` blocks).
 */
function wireConversation(protocol: FakeProtocol, body: Record<string, unknown>): { prompt: string; turns: ConversationTurn[]; results: ToolResult[] } {
  type Wire = { role?: string; content?: unknown; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>; tool_call_id?: string };
  const messages = Array.isArray(body['messages']) ? (body['messages'] as Wire[]) : [];
  const text = (c: unknown): string => (typeof c === 'string' ? c : Array.isArray(c) ? c.map((p: { type?: string; text?: string }) => (p.type === 'text' || p.type === undefined ? (p.text ?? '') : '')).join('') : '');
  const firstUser = messages.find((m) => m.role === 'user');
  const turns: ConversationTurn[] = [];
  const results: ToolResult[] = [];
  for (const m of messages) {
    if (protocol === 'openai') {
      if (m.role === 'assistant' && m.tool_calls?.length) turns.push({ role: 'assistant', text: text(m.content), toolCalls: m.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) });
      if (m.role === 'tool') {
        const r = { callId: m.tool_call_id ?? '', name: '', content: text(m.content) };
        results.push(r);
        turns.push({ role: 'tool', results: [r] });
      }
    } else if (Array.isArray(m.content)) {
      const blocks = m.content as Array<{ type: string; id?: string; name?: string; input?: unknown; tool_use_id?: string; content?: unknown; is_error?: boolean }>;
      const uses = blocks.filter((x) => x.type === 'tool_use');
      if (m.role === 'assistant' && uses.length > 0) turns.push({ role: 'assistant', text: '', toolCalls: uses.map((u) => ({ id: u.id ?? '', name: u.name ?? '', arguments: u.input })) });
      const rs = blocks.filter((x) => x.type === 'tool_result').map((x) => ({ callId: x.tool_use_id ?? '', name: '', content: text(x.content), ...(x.is_error ? { isError: true } : {}) }));
      if (rs.length > 0) {
        results.push(...rs);
        turns.push({ role: 'tool', results: rs });
      }
    }
  }
  return { prompt: text(firstUser?.content) || protocol, turns, results };
}

function openAiToolCallMessage(model: string, calls: ToolCall[], usage: { input: number; output: number }): unknown {
  return {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments ?? {}) } })) }, finish_reason: 'tool_calls', logprobs: null }],
    usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output },
  };
}

function anthropicToolCallMessage(model: string, calls: ToolCall[], usage: { input: number; output: number }): unknown {
  return {
    id: 'msg_fake',
    type: 'message',
    role: 'assistant',
    model,
    content: calls.map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: c.arguments ?? {} })),
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: { input_tokens: usage.input, output_tokens: usage.output },
  };
}

function openAiMessage(model: string, text: string, usage: { input: number; output: number }): unknown {
  return {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output },
  };
}

function anthropicMessage(model: string, text: string, usage: { input: number; output: number }): unknown {
  return {
    id: 'msg_fake',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: usage.input, output_tokens: usage.output },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

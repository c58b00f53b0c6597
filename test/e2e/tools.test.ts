/**
 * Tools end to end (issue 4): a cluster (every service its own process, real
 * NATS and Redis) whose agent worker runs `http` tool steps and agent steps
 * with function calling.
 *
 * Loopback is a blocked range, so the one "allowed host" is a local server
 * let through by port with MUSE_HTTP_ALLOW_LOOPBACK_PORTS (test-only); a
 * second local server on another port stands for everything that must stay
 * unreachable, and must never see a request. The SSRF attempts —
 * 127.0.0.1:6379 (this machine's Redis), 169.254.169.254, [::1], and a
 * redirect from the allowed host to loopback — all fail with
 * MUSE_ERR_TOOL_FORBIDDEN, not retried. Agent steps call the tools through
 * the deterministic provider (a `::tool-call` script in the prompt) and
 * through the official SDKs against fake OpenAI and Anthropic servers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { ArtifactLineage, ArtifactMeta, RunEvent, RunView, StepView } from '@muse/contracts';
import { FakeModelServer } from '@muse/providers/testing';
import { http, REDIS_URL, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

interface LocalServer {
  server: Server;
  port: number;
  seen: Array<{ method: string; url: string; body: string }>;
}

async function serve(handler: (req: IncomingMessage, body: string, res: import('node:http').ServerResponse, port: number) => void): Promise<LocalServer> {
  const seen: LocalServer['seen'] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    seen.push({ method: req.method ?? '', url: req.url ?? '', body });
    handler(req, body, res, (server.address() as AddressInfo).port);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, seen };
}

async function stop(s: LocalServer | undefined): Promise<void> {
  if (!s) return;
  s.server.closeAllConnections();
  await new Promise<void>((r) => s.server.close(() => r()));
}

describe('tools: http steps, SSRF rules and function calling end to end', { timeout: 300_000 }, () => {
  let t: TestCluster;
  let allowed: LocalServer;
  let forbidden: LocalServer;
  let oa: FakeModelServer;
  let an: FakeModelServer;
  let dir: string | undefined;

  before(async () => {
    forbidden = await serve((_req, _body, res) => res.end('internal secret'));
    allowed = await serve((req, body, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/redirect') {
        res.writeHead(302, { location: u.searchParams.get('to') ?? '/' });
        return res.end();
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ service: 'allowed', method: req.method, path: u.pathname, q: u.searchParams.get('q'), body }));
    });
    oa = await FakeModelServer.start('openai', { apiKey: 'sk-fake-openai' });
    an = await FakeModelServer.start('anthropic', { apiKey: 'sk-fake-anthropic' });
    dir = mkdtempSync(join(tmpdir(), 'muse-tools-e2e-'));
    const file = join(dir, 'providers.json');
    writeFileSync(
      file,
      JSON.stringify({
        providers: {
          local: { type: 'deterministic' },
          oa: { type: 'openai', baseUrl: oa.baseUrl, apiKeyEnv: 'TEST_FAKE_OPENAI_KEY', model: 'gpt-fake', timeoutMs: 10_000, maxAttempts: 1 },
          an: { type: 'anthropic', baseUrl: an.baseUrl, apiKeyEnv: 'TEST_FAKE_ANTHROPIC_KEY', model: 'claude-fake', timeoutMs: 10_000, maxAttempts: 1 },
        },
        // The deterministic provider by default; the reviewer asks the fake OpenAI server, the optimizer the fake Anthropic one.
        chains: { default: ['local'], reviewer: ['oa'], optimizer: ['an'] },
      }),
    );
    t = await startTestCluster({
      workers: 1,
      env: {
        MUSE_PROVIDERS_CONFIG: file,
        TEST_FAKE_OPENAI_KEY: 'sk-fake-openai',
        TEST_FAKE_ANTHROPIC_KEY: 'sk-fake-anthropic',
        MUSE_HTTP_ALLOW_HOSTS: '127.0.0.1,[::1],localhost',
        // TEST ONLY: the allowed server's port; every other loopback port (Redis, the forbidden server, the cluster) stays refused.
        MUSE_HTTP_ALLOW_LOOPBACK_PORTS: String(allowed.port),
        MUSE_HTTP_TIMEOUT_MS: '5000',
      },
    });
  });

  after(async () => {
    await t?.stop();
    await stop(allowed);
    await stop(forbidden);
    await oa?.close();
    await an?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function run(definition: unknown, input: Record<string, unknown> = {}): Promise<RunView> {
    const res = await http(t.gateway, 'POST', '/v1/runs', { definition, input });
    assert.equal(res.status, 202, res.text);
    return waitForRun(t.gateway, res.body.id, 60_000);
  }

  const step = (r: RunView, id: string): StepView => {
    const s = r.steps.find((x) => x.id === id);
    assert.ok(s, `step ${id} in ${JSON.stringify(r.steps.map((x) => x.id))}`);
    return s;
  };

  async function artifacts(runId: string): Promise<ArtifactMeta[]> {
    const list = await http<{ items: ArtifactMeta[] }>(t.gateway, 'GET', `/v1/runs/${runId}/artifacts`);
    assert.equal(list.status, 200, list.text);
    return list.body.items;
  }

  async function content(id: string): Promise<string> {
    const res = await http(t.gateway, 'GET', `/v1/artifacts/${id}/content`);
    assert.equal(res.status, 200, res.text);
    return res.text;
  }

  test('SSRF attempts are refused with MUSE_ERR_TOOL_FORBIDDEN, not retried, and never connect', async () => {
    const get = (id: string, url: string) => ({ id, tool: 'http', request: { method: 'GET', url }, continueOnFailure: true, retry: { maxAttempts: 3, backoff: { initialMs: 10 } } });
    const r = await run({
      name: 'ssrf',
      steps: [
        get('redis', 'http://127.0.0.1:6379/'),
        get('metadata', 'http://169.254.169.254/latest/meta-data/iam/security-credentials/'),
        get('ipv6-loopback', `http://[::1]:${forbidden.port}/`),
        get('redirect-to-loopback', `http://127.0.0.1:${allowed.port}/redirect?to=${encodeURIComponent(`http://127.0.0.1:${forbidden.port}/secret`)}`),
        get('redirect-to-metadata', `http://127.0.0.1:${allowed.port}/redirect?to=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`),
        get('not-allowed', 'http://example.com/'),
      ],
    });
    assert.ok(['succeeded', 'failed'].includes(r.status), r.status);
    const expected: Record<string, { rule: string; address?: string; redirect?: number }> = {
      redis: { rule: 'loopback', address: '127.0.0.1' },
      metadata: { rule: 'metadata', address: '169.254.169.254' },
      'ipv6-loopback': { rule: 'loopback', address: '::1' },
      'redirect-to-loopback': { rule: 'loopback', address: '127.0.0.1', redirect: 1 },
      'redirect-to-metadata': { rule: 'metadata', address: '169.254.169.254', redirect: 1 },
      'not-allowed': { rule: 'host-allowlist' },
    };
    for (const [id, want] of Object.entries(expected)) {
      const s = step(r, id);
      assert.equal(s.status, 'failed', `${id}: ${JSON.stringify(s)}`);
      assert.equal(s.attempts, 1, `${id} is not retried`);
      assert.equal(s.error?.code, 'MUSE_ERR_TOOL_FORBIDDEN', `${id}: ${JSON.stringify(s.error)}`);
      assert.equal(s.error?.retryable, false);
      const d = s.error?.details as { rule: string; address?: string; redirect?: number };
      assert.equal(d.rule, want.rule, id);
      if (want.address) assert.equal(d.address, want.address, id);
      if (want.redirect) assert.equal(d.redirect, want.redirect, id);
    }
    assert.match(step(r, 'redis').error!.message, /127\.0\.0\.1:6379 is refused: loopback/);
    // The allowed host answered the redirects' first hop; the forbidden server never saw a request.
    assert.equal(allowed.seen.filter((x) => x.url.startsWith('/redirect')).length, 2);
    assert.deepEqual(forbidden.seen, []);
    // A refusal leaves no artifact behind.
    assert.deepEqual(await artifacts(r.id), []);
  });

  test('an allowed fetch (GET and POST) is the step output and an artifact with lineage; later readers are its consumers', async () => {
    const r = await run(
      {
        name: 'fetch',
        steps: [
          { id: 'fetch', tool: 'http', request: { method: 'GET', url: `http://127.0.0.1:${allowed.port}/data?q={{ input.q }}`, headers: { accept: 'application/json' } } },
          { id: 'post', tool: 'http', request: { method: 'POST', url: `http://localhost:${allowed.port}/items`, headers: { 'content-type': 'application/json' }, body: '{"q":"{{ input.q }}"}' } },
          { id: 'summarize', agent: 'orchestrator', prompt: 'Summarize {{ steps.fetch.output.body }} ({{ steps.fetch.output.status }})', needs: ['fetch'] },
        ],
      },
      { q: 'widgets' },
    );
    assert.equal(r.status, 'succeeded', JSON.stringify(r.steps));
    const out = step(r, 'fetch').output as { status: number; headers: Record<string, string>; body: string; url: string };
    assert.equal(out.status, 200);
    assert.equal(out.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(out.body), { service: 'allowed', method: 'GET', path: '/data', q: 'widgets', body: '' });
    assert.equal(out.url, `http://127.0.0.1:${allowed.port}/data?q=widgets`);
    const posted = step(r, 'post').output as { body: string };
    assert.deepEqual(JSON.parse(posted.body), { service: 'allowed', method: 'POST', path: '/items', q: null, body: '{"q":"widgets"}' });
    assert.match((step(r, 'summarize').output as { text: string }).text, /re: Summarize \{"service":"allowed"/);

    const items = await artifacts(r.id);
    const resp = items.find((a) => a.stepId === 'fetch')!;
    assert.ok(resp, JSON.stringify(items));
    assert.equal(resp.name, 'response.json');
    assert.equal(resp.mediaType, 'application/json');
    assert.equal(resp.attempt, 1);
    assert.equal(resp.producer.tool, 'http');
    assert.equal(resp.producer.toolVersion, '1.0.0');
    assert.ok(resp.producer.agentId.length > 0);
    assert.equal(resp.schema, 'muse.http-response/v1');
    assert.deepEqual(JSON.parse(await content(resp.id)), out);
    const lineage = await http<ArtifactLineage>(t.gateway, 'GET', `/v1/artifacts/${resp.id}/lineage`);
    assert.equal(lineage.status, 200, lineage.text);
    assert.deepEqual(lineage.body.artifact.consumers, [{ runId: r.id, stepId: 'summarize', attempt: 1 }]);
  });

  const script = (port: number) =>
    [
      'Check the service and report.',
      `::tool-call http {"method":"GET","url":"http://127.0.0.1:${port}/status?q=tool"}`,
      '::tool-call http {"method":"GET","url":"http://169.254.169.254/latest/meta-data/"}',
    ].join('\n');

  async function checkToolArtifacts(r: RunView, stepId: string): Promise<void> {
    const items = (await artifacts(r.id)).filter((a) => a.stepId === stepId);
    const calls = items.filter((a) => a.name.startsWith('tool-calls/')).sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(calls.map((a) => [a.name, a.producer.tool, a.producer.toolVersion, a.schema, a.attempt]), [
      ['tool-calls/01-http.json', 'http', '1.0.0', 'muse.tool-call/v1', 1],
      ['tool-calls/02-http.json', 'http', '1.0.0', 'muse.tool-call/v1', 1],
    ]);
    const ok = JSON.parse(await content(calls[0]!.id));
    assert.equal(ok.result.status, 200);
    assert.deepEqual(JSON.parse(ok.result.body), { service: 'allowed', method: 'GET', path: '/status', q: 'tool', body: '' });
    const refused = JSON.parse(await content(calls[1]!.id));
    assert.equal(refused.error.code, 'MUSE_ERR_TOOL_FORBIDDEN');
    assert.equal(refused.error.details.rule, 'metadata');
    assert.ok(items.some((a) => a.name === 'response.md'), 'the answer is an artifact too');
  }

  test('an agent step runs the deterministic provider’s scripted tool calls and feeds the results back', async () => {
    const before = allowed.seen.length;
    const r = await run({ name: 'agent-tools', steps: [{ id: 'look', agent: 'orchestrator', prompt: script(allowed.port), tools: ['http'], maxToolCalls: 4 }] });
    assert.equal(r.status, 'succeeded', JSON.stringify(r.steps));
    const out = step(r, 'look').output as { text: string; provider: string; toolCalls: Array<{ id: string; tool: string; outcome: string; artifact: string }> };
    assert.equal(out.provider, 'local');
    assert.deepEqual(out.toolCalls.map((c) => [c.id, c.tool, c.outcome, c.artifact]), [
      ['call_1_1', 'http', 'ok', 'tool-calls/01-http.json'],
      ['call_1_2', 'http', 'MUSE_ERR_TOOL_FORBIDDEN', 'tool-calls/02-http.json'],
    ]);
    assert.match(out.text, /call_1_1 http ok: \{"status":200,"body":"\{\\"service\\":\\"allowed\\"/);
    assert.match(out.text, /call_1_2 http error: \{"error":\{"code":"MUSE_ERR_TOOL_FORBIDDEN"/);
    assert.equal(allowed.seen.length, before + 1);
    await checkToolArtifacts(r, 'look');
  });

  test('more tool calls than maxToolCalls fail the step with MUSE_ERR_TOOL_CALLS_EXCEEDED, not retried; the call made counts in the spend', async () => {
    const budget = { maxTokens: 100_000 };
    const r = await run({ name: 'agent-too-many', budget, steps: [{ id: 'look', agent: 'orchestrator', prompt: script(allowed.port), tools: ['http'], maxToolCalls: 1 }] });
    assert.equal(r.status, 'failed');
    const s = step(r, 'look');
    assert.equal(s.attempts, 1);
    assert.equal(s.error?.code, 'MUSE_ERR_TOOL_CALLS_EXCEEDED');
    assert.equal(s.error?.retryable, false);
    // The model call that asked for too many tools was charged to the budget: the run's spend says so too.
    const redis = new Redis(REDIS_URL);
    const charged = Number(await redis.hget(`${t.namespace}:run-budget:${r.id}`, 'spentTokens').finally(() => redis.disconnect()));
    assert.ok(charged > 0, `the budget was charged (${charged})`);
    assert.equal(r.spend?.tokens, charged);
    assert.deepEqual(r.spend?.byStep, { look: { tokens: charged, cost: 0 } });
    assert.deepEqual(Object.keys(r.spend?.byProvider ?? {}), ['local']);
    const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${r.id}/events`)).body.items;
    const failed = events.find((e) => e.type === 'step.failed');
    assert.equal(failed?.type === 'step.failed' && failed.data.spent ? failed.data.spent.inputTokens + failed.data.spent.outputTokens : undefined, charged);
  });

  for (const [role, provider, server, idPrefix] of [
    ['reviewer', 'oa', () => oa, 'call'],
    ['optimizer', 'an', () => an, 'toolu'],
  ] as const) {
    test(`function calling over the ${provider === 'oa' ? 'OpenAI' : 'Anthropic'} wire protocol (official SDK, fake server)`, async () => {
      const fake = server();
      const first = fake.requests.length;
      const r = await run({ name: `agent-tools-${provider}`, steps: [{ id: 'look', agent: role, prompt: script(allowed.port), tools: ['http'] }] });
      assert.equal(r.status, 'succeeded', JSON.stringify(r.steps));
      const out = step(r, 'look').output as { text: string; provider: string; toolCalls: Array<{ id: string; outcome: string }> };
      assert.equal(out.provider, provider);
      assert.deepEqual(out.toolCalls.map((c) => [c.id, c.outcome]), [
        [`${idPrefix}_1_1`, 'ok'],
        [`${idPrefix}_1_2`, 'MUSE_ERR_TOOL_FORBIDDEN'],
      ]);
      // The server's final answer quotes the results it received in its own protocol's shape.
      assert.ok(out.text.includes(`${idPrefix}_1_1={"status":200,"body":"{\\"service\\":\\"allowed\\"`), out.text);
      const bodies = fake.requests.slice(first).map((q) => q.body);
      assert.equal(bodies.length, 2, 'one request with the calls, one with their results');
      assert.equal((bodies[0]!['tools'] as Array<unknown>).length, 1);
      const sent = JSON.stringify(bodies[1]!['messages']);
      if (provider === 'oa') assert.match(sent, /"role":"tool","tool_call_id":"call_1_1"/);
      else assert.match(sent, /"type":"tool_result","tool_use_id":"toolu_1_2","content":"\{\\"error\\".*"is_error":true/);
      await checkToolArtifacts(r, 'look');
    });
  }
});

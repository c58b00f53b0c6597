/**
 * The MCP server end to end, driven by the SDK's own client over both
 * transports against a running cluster: stdio (`muse mcp`, the built CLI as
 * a subprocess) and Streamable HTTP (the gateway's `/mcp`). Each transport
 * submits a run and follows its progress notifications until it succeeds,
 * reads its artifact (tool and resource), approves a gate while subscribed
 * to the run's resource, gets the REST 404 envelope as a tool error for
 * another project's run, and a `read` key cannot submit.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceUpdatedNotificationSchema, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { REPO_ROOT } from '@muse/cluster';
import type { ArtifactMeta, RunView } from '@muse/contracts';
import { bearer, http, NO_AUTH, startTestCluster, type TestCluster } from '../support/harness.js';

/** Three shell steps in a row, slow enough that each finishes on its own. */
const STEPS = {
  name: 'mcp-steps',
  description: 'three steps for the MCP test',
  steps: [
    { id: 'prepare', tool: 'shell', command: 'sleep 0.4; echo prepared' },
    { id: 'greet', tool: 'shell', command: 'sleep 0.4; echo hello {{ input.who }}', needs: ['prepare'] },
    { id: 'finish', tool: 'shell', command: 'sleep 0.4; echo done', needs: ['greet'] },
  ],
};
const GATED = {
  name: 'mcp-gated',
  steps: [
    { id: 'build', tool: 'shell', command: 'echo built' },
    { id: 'gate', type: 'approval', needs: ['build'] },
    { id: 'ship', tool: 'shell', command: 'echo shipped', needs: ['gate'] },
  ],
};
const EXPECTED_TOOLS = [
  'list_workflows',
  'describe_workflow',
  'submit_run',
  'list_runs',
  'get_run',
  'get_run_events',
  'wait_for_run',
  'list_run_artifacts',
  'read_artifact',
  'decide_approval',
  'cancel_run',
  'retry_run',
  'rerun_run',
  'pause_run',
  'resume_run',
  'list_dead_letters',
  'list_agents',
  'list_pools',
  'list_leases',
  'get_status',
];

type Structured = Record<string, any>;
type Connect = (key: string) => Promise<Client>;

async function call(client: Client, name: string, args: Record<string, unknown> = {}, onprogress?: (p: Progress) => void): Promise<CallToolResult & { structuredContent: Structured }> {
  const res = (await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000, ...(onprogress ? { onprogress, resetTimeoutOnProgress: true } : {}) })) as CallToolResult;
  assert.ok(res.structuredContent, `${name} answered without structured content: ${JSON.stringify(res)}`);
  return res as CallToolResult & { structuredContent: Structured };
}

async function ok(client: Client, name: string, args: Record<string, unknown> = {}, onprogress?: (p: Progress) => void): Promise<Structured> {
  const res = await call(client, name, args, onprogress);
  assert.notEqual(res.isError, true, `${name} failed: ${JSON.stringify(res.structuredContent)}`);
  return res.structuredContent;
}

describe('MCP server over stdio (muse mcp) and Streamable HTTP (/mcp)', { timeout: 300_000 }, () => {
  let t: TestCluster;
  const keys: Record<'writerA' | 'readerA' | 'writerB', string> = { writerA: '', readerA: '', writerB: '' };
  const open: Client[] = [];

  const viaStdio: Connect = async (key) => {
    const client = new Client({ name: 'muse-e2e', version: '1.0.0' });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [join(REPO_ROOT, 'apps/cli/dist/main.js'), 'mcp'],
      env: { MUSE_GATEWAY_URL: t.gateway, MUSE_API_KEY: key, MUSE_HOME: join(t.dataDir, 'no-home') },
      stderr: 'ignore',
    });
    await client.connect(transport);
    open.push(client);
    return client;
  };
  const viaHttp: Connect = async (key) => {
    const client = new Client({ name: 'muse-e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${t.gateway}/mcp`), { requestInit: { headers: bearer(key) } }));
    open.push(client);
    return client;
  };

  before(async () => {
    t = await startTestCluster();
    for (const name of ['team-a', 'team-b']) assert.equal((await http(t.gateway, 'POST', '/v1/projects', { name })).status, 201);
    const make = async (name: string, projects: string[], scopes: string[]) => {
      const res = await http<{ key: string }>(t.gateway, 'POST', '/v1/api-keys', { name, projects, scopes });
      assert.equal(res.status, 201, res.text);
      return res.body.key;
    };
    keys.writerA = await make('mcp-writer-a', ['team-a'], ['write']);
    keys.readerA = await make('mcp-reader-a', ['team-a'], ['read']);
    keys.writerB = await make('mcp-writer-b', ['team-b'], ['write']);
    for (const wf of [STEPS, GATED]) {
      const res = await http(t.gateway, 'POST', '/v1/workflows', wf, bearer(keys.writerA));
      assert.equal(res.status, 201, res.text);
    }
  });

  after(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await t?.stop();
  });

  for (const [transport, connect] of [
    ['stdio', (k: string) => viaStdio(k)],
    ['http', (k: string) => viaHttp(k)],
  ] as const) {
    describe(transport, () => {
      let client: Client;
      before(async () => {
        client = await connect(keys.writerA);
      });

      test('lists every tool with an object input schema built from the contracts', async () => {
        const { tools } = await client.listTools();
        assert.deepEqual(tools.map((x) => x.name).sort(), [...EXPECTED_TOOLS].sort());
        for (const x of tools) assert.equal(x.inputSchema.type, 'object', x.name);
        const submit = tools.find((x) => x.name === 'submit_run')!;
        assert.deepEqual(Object.keys(submit.inputSchema.properties ?? {}).sort(), ['definition', 'idempotencyKey', 'input', 'priority', 'version', 'workflow']);
        const decide = tools.find((x) => x.name === 'decide_approval')!;
        assert.deepEqual((decide.inputSchema.properties as Structured).decision.enum, ['approve', 'reject']);
        assert.deepEqual([...(decide.inputSchema.required ?? [])].sort(), ['decision', 'runId', 'stepId']);
        const wf = await ok(client, 'list_workflows');
        assert.deepEqual(wf.items.map((w: { name: string }) => w.name).sort(), ['mcp-gated', 'mcp-steps']);
        const described = await ok(client, 'describe_workflow', { name: 'mcp-steps' });
        assert.deepEqual(described.latest.definition.steps.map((s: { id: string }) => s.id), ['prepare', 'greet', 'finish']);
      });

      test('submit a run (idempotently), follow progress notifications until it succeeds, read its artifact', async () => {
        const idem = `mcp-${transport}-${Date.now()}`;
        const submitted = await ok(client, 'submit_run', { workflow: 'mcp-steps', input: { who: transport }, idempotencyKey: idem });
        assert.match(submitted.id, /^run_/);
        const again = await ok(client, 'submit_run', { workflow: 'mcp-steps', input: { who: transport }, idempotencyKey: idem });
        assert.equal(again.id, submitted.id, 'the same idempotency key returns the same run');

        const progress: Progress[] = [];
        const waited = await ok(client, 'wait_for_run', { runId: submitted.id, timeoutMs: 90_000 }, (p) => progress.push(p));
        assert.equal(waited.timedOut, false);
        assert.equal(waited.finished, true);
        assert.equal(waited.run.status, 'succeeded', JSON.stringify(waited.run));
        assert.ok(progress.length >= 2, `progress notifications: ${JSON.stringify(progress)}`);
        for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.progress > progress[i - 1]!.progress, 'progress only goes up');
        for (const p of progress) assert.equal(p.total, 3);
        // The server sends a last notification (3/3) before the result; the SDK's client may still drop it when it
        // reads both in one chunk (typescript-sdk#2580; the server pauses between them to make that rare).
        const last = progress.at(-1)!;
        assert.ok(last.progress >= 2, `the notifications reached the run's second step at least: ${JSON.stringify(progress)}`);
        if (last.progress === 3) assert.match(last.message ?? '', /finish succeeded/);
        assert.ok(progress.some((p) => /greet succeeded/.test(p.message ?? '')), `a notification named the step that finished: ${JSON.stringify(progress)}`);

        const run = (await ok(client, 'get_run', { runId: submitted.id })) as RunView;
        assert.deepEqual(run.steps.map((s) => [s.id, s.status]), [['prepare', 'succeeded'], ['greet', 'succeeded'], ['finish', 'succeeded']]);

        const artifacts = (await ok(client, 'list_run_artifacts', { runId: submitted.id })).items as ArtifactMeta[];
        const greet = artifacts.find((a) => a.stepId === 'greet');
        assert.ok(greet, JSON.stringify(artifacts));
        const read = await ok(client, 'read_artifact', { artifactId: greet.id });
        assert.equal(read.artifact.id, greet.id);
        assert.equal(read.encoding, 'utf8');
        assert.equal(read.truncated, false);
        assert.match(read.artifact.mediaType, /^text\//);
        assert.equal(read.content.trim(), `hello ${transport}`, 'a shell step\'s artifact is its stdout');
        const slice = await ok(client, 'read_artifact', { artifactId: greet.id, offset: 0, maxBytes: 5 });
        assert.equal(slice.length, 5);
        assert.equal(slice.truncated, true);

        const resource = await client.readResource({ uri: `muse://artifacts/${greet.id}` });
        const text = (resource.contents[0] as { text?: string }).text;
        assert.equal(text!.trim(), `hello ${transport}`);
        const runResource = await client.readResource({ uri: `muse://runs/${submitted.id}` });
        assert.equal(JSON.parse((runResource.contents[0] as { text: string }).text).status, 'succeeded');
      });

      test('approve a gate while subscribed to the run: the run resource notifies each change', async () => {
        const updates: string[] = [];
        client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
        const { id } = await ok(client, 'submit_run', { workflow: 'mcp-gated' });
        const uri = `muse://runs/${id}`;
        await client.subscribeResource({ uri });

        const waiting = await ok(client, 'wait_for_run', { runId: id, timeoutMs: 60_000 });
        assert.equal(waiting.run.status, 'waiting', JSON.stringify(waiting.run));
        assert.equal(waiting.finished, false);
        assert.equal(waiting.run.steps.find((s: { id: string }) => s.id === 'gate').status, 'waiting');

        const early = await call(client, 'decide_approval', { runId: id, stepId: 'ship', decision: 'approve' });
        assert.equal(early.isError, true);
        assert.equal(early.structuredContent.error.code, 'MUSE_ERR_STEP_NOT_WAITING');

        const decided = await ok(client, 'decide_approval', { runId: id, stepId: 'gate', decision: 'approve', comment: `via ${transport}` });
        assert.deepEqual(decided, { id, stepId: 'gate', decision: 'approve' });
        // Right after the decision the view may still show the gate waiting: wait for the end only.
        const done = await ok(client, 'wait_for_run', { runId: id, timeoutMs: 60_000, returnWhenWaiting: false });
        assert.equal(done.run.status, 'succeeded', JSON.stringify(done.run));
        assert.equal(done.run.steps.find((s: { id: string }) => s.id === 'gate').output.comment, `via ${transport}`);

        const deadline = Date.now() + 10_000;
        while (!updates.includes(uri) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        assert.ok(updates.includes(uri), `no notifications/resources/updated for ${uri}: ${JSON.stringify(updates)}`);
        await client.unsubscribeResource({ uri });
      });

      test("another project's run and artifact answer the REST 404 envelope, as a tool error", async () => {
        const theirs = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition: { name: 'b-only', steps: [{ id: 'x', tool: 'shell', command: 'echo b' }] } }, bearer(keys.writerB));
        assert.equal(theirs.status, 202, theirs.text);
        const rest = await http(t.gateway, 'GET', `/v1/runs/${theirs.body.id}`, undefined, bearer(keys.writerA));
        assert.equal(rest.status, 404);

        const res = await call(client, 'get_run', { runId: theirs.body.id });
        assert.equal(res.isError, true);
        assert.deepEqual(res.structuredContent, rest.body, 'the tool error is the REST error envelope');
        assert.equal(res.structuredContent.error.code, 'MUSE_ERR_RUN_NOT_FOUND');
        const missing = await call(client, 'get_run', { runId: `run_${'0'.repeat(26)}` });
        assert.equal(missing.structuredContent.error.code, res.structuredContent.error.code, 'like an id that does not exist');

        for (const name of ['wait_for_run', 'list_run_artifacts', 'cancel_run']) {
          const denied = await call(client, name, { runId: theirs.body.id });
          assert.equal(denied.isError, true, name);
          assert.equal(denied.structuredContent.error.code, 'MUSE_ERR_RUN_NOT_FOUND', name);
        }
        await assert.rejects(client.readResource({ uri: `muse://runs/${theirs.body.id}` }), /No run/);

        // Their artifact, once their run has one: the same 404 as over REST, as a tool and as a resource.
        let theirArtifact: ArtifactMeta | undefined;
        for (const deadline = Date.now() + 30_000; !theirArtifact && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
          const list = await http<{ items: ArtifactMeta[] }>(t.gateway, 'GET', `/v1/runs/${theirs.body.id}/artifacts`, undefined, bearer(keys.writerB));
          theirArtifact = list.body.items?.[0];
        }
        assert.ok(theirArtifact, "project B's run made no artifact");
        const restArtifact = await http(t.gateway, 'GET', `/v1/artifacts/${theirArtifact.id}`, undefined, bearer(keys.writerA));
        assert.equal(restArtifact.status, 404);
        const art = await call(client, 'read_artifact', { artifactId: theirArtifact.id });
        assert.equal(art.isError, true);
        assert.deepEqual(art.structuredContent, restArtifact.body);
        assert.equal(art.structuredContent.error.code, 'MUSE_ERR_ARTIFACT_NOT_FOUND');
        await assert.rejects(client.readResource({ uri: `muse://artifacts/${theirArtifact.id}` }), /No artifact|not found/i);

        const invalid = await call(client, 'get_run', {});
        assert.equal(invalid.isError, true);
        assert.equal(invalid.structuredContent.error.code, 'MUSE_ERR_REQUEST_INVALID');
        assert.equal(invalid.structuredContent.error.details.issues[0].path, 'runId');
      });

      test('a key with only the read scope reads but cannot submit (403 envelope)', async () => {
        const reader = await connect(keys.readerA);
        const denied = await call(reader, 'submit_run', { workflow: 'mcp-steps', input: { who: 'reader' } });
        assert.equal(denied.isError, true);
        assert.equal(denied.structuredContent.error.code, 'MUSE_ERR_AUTH_FORBIDDEN');
        assert.equal(denied.structuredContent.error.details.required, 'write');
        const runs = await ok(reader, 'list_runs', { limit: 5 });
        assert.ok(runs.items.length >= 1);
        const status = await ok(reader, 'get_status');
        assert.ok(status.runs.byStatus.succeeded >= 1, JSON.stringify(status.runs));
        assert.ok(status.agents.alive >= 1);
        assert.ok(status.recentEvents.length >= 1);
        assert.ok(Array.isArray((await ok(reader, 'list_agents')).items));
        assert.ok(Array.isArray((await ok(reader, 'list_pools')).items));
        const leases = await ok(reader, 'list_leases');
        assert.ok(Array.isArray(leases.holders) && Array.isArray(leases.waiters));
        await reader.close();
      });
    });
  }

  test('http: /mcp needs a credential, and a session answers only the principal that opened it', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
    const accept = { accept: 'application/json, text/event-stream' };
    const anonymous = await http(t.gateway, 'POST', '/mcp', init, { ...NO_AUTH, ...accept });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error.code, 'MUSE_ERR_AUTH_REQUIRED');

    const opened = await fetch(`${t.gateway}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', ...accept, ...bearer(keys.writerA) }, body: JSON.stringify(init) });
    assert.equal(opened.status, 200);
    const sessionId = opened.headers.get('mcp-session-id');
    assert.ok(sessionId);
    await opened.text();
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
    const stolen = await http(t.gateway, 'POST', '/mcp', list, { ...accept, ...bearer(keys.writerB), 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(stolen.status, 404, stolen.text);
    assert.equal(stolen.body.error.code, 'MUSE_ERR_MCP_SESSION_NOT_FOUND');
    const sessionless = await http(t.gateway, 'POST', '/mcp', list, { ...accept, ...bearer(keys.writerA) });
    assert.equal(sessionless.status, 400, sessionless.text);
    assert.equal(sessionless.body.error.code, 'MUSE_ERR_REQUEST_INVALID');
    const ended = await http(t.gateway, 'DELETE', '/mcp', undefined, { ...bearer(keys.writerA), 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(ended.status, 200, ended.text);
    const gone = await http(t.gateway, 'POST', '/mcp', list, { ...accept, ...bearer(keys.writerA), 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(gone.status, 404, gone.text);
    assert.equal(gone.body.error.code, 'MUSE_ERR_MCP_SESSION_NOT_FOUND');
  });
});

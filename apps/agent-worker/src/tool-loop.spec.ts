import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MuseError, type ShellOutput, type StepJob } from '@muse/contracts';
import { LocalDeterministicProvider } from '@muse/providers';
import { HostAllowlist } from './address-policy.js';
import { AgentStepExecutor } from './agent-step.executor.js';
import { AgentToolRunner } from './agent-tools.js';
import { HTTP_TOOL_VERSION, HttpTool } from './http-tool.js';
import { TOOL_CALL_SCHEMA, ToolLoop } from './tool-loop.js';

describe('agent steps with tools (function calling through the deterministic provider)', () => {
  let server: Server;
  let port: number;
  let loop: ToolLoop;
  let executor: AgentStepExecutor;
  const shellRuns: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    const http = new HttpTool({ allowlist: HostAllowlist.parse('*'), allowLoopbackPorts: new Set([port]), timeoutMs: 2_000 });
    const shell = {
      run: async (job: StepJob): Promise<ShellOutput> => {
        shellRuns.push(`${job.kind}:${job.command}:${job.secrets === undefined}:${job.network === undefined}`);
        return { exitCode: 0, stdout: `ran ${job.command}\n`, stderr: '' };
      },
    };
    loop = new ToolLoop(new AgentToolRunner({ http, shell }));
    executor = new AgentStepExecutor(new LocalDeterministicProvider(), undefined, undefined, undefined, undefined, loop);
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const job = (prompt: string, over: Partial<StepJob> = {}): StepJob => ({
    runId: 'run_tools1',
    project: 'default',
    stepId: 'ask',
    attempt: 1,
    role: 'orchestrator',
    kind: 'agent',
    prompt,
    model: 'muse-local',
    timeoutMs: 10_000,
    tools: ['http', 'shell'],
    ...over,
  });

  test('scripted calls run through the real tools; results are fed back, recorded and stored as artifacts', async () => {
    const prompt = [
      'Look around.',
      `::tool-call http {"method":"GET","url":"http://127.0.0.1:${port}/status"}`,
      '::tool-call http {"method":"GET","url":"http://169.254.169.254/latest/meta-data/"}',
      '',
      '::tool-call shell {"command":"ls"}',
    ].join('\n');
    const j = job(prompt, { secrets: ['TOKEN'], network: true });
    const out = await executor.run(j, new AbortController().signal);
    assert.deepEqual(
      out.toolCalls!.map((c) => [c.id, c.tool, c.outcome, c.artifact]),
      [
        ['call_1_1', 'http', 'ok', 'tool-calls/01-http.json'],
        ['call_1_2', 'http', 'MUSE_ERR_TOOL_FORBIDDEN', 'tool-calls/02-http.json'],
        ['call_2_1', 'shell', 'ok', 'tool-calls/03-shell.json'],
      ],
    );
    // The final answer quotes what each call gave (the deterministic provider's way of showing it was fed back).
    assert.match(out.text, /call_1_1 http ok: \{"status":200,"body":"\{\\"ok\\":true,\\"path\\":\\"\/status\\"\}"/);
    assert.match(out.text, /call_1_2 http error: \{"error":\{"code":"MUSE_ERR_TOOL_FORBIDDEN","message":"169\.254\.169\.254:80 is refused: cloud metadata endpoint"/);
    assert.match(out.text, /call_2_1 shell ok: \{"exitCode":0,"stdout":"ran ls\\n"/);
    // A shell call never gets the step's secrets or network.
    assert.deepEqual(shellRuns, ['shell:ls:true:true']);
    assert.ok(out.usage.inputTokens > 0);

    const artifacts = loop.take(j);
    assert.deepEqual(artifacts.map((a) => [a.name, a.tool, a.toolVersion, a.schema, a.mediaType]), [
      ['tool-calls/01-http.json', 'http', HTTP_TOOL_VERSION, TOOL_CALL_SCHEMA, 'application/json'],
      ['tool-calls/02-http.json', 'http', HTTP_TOOL_VERSION, TOOL_CALL_SCHEMA, 'application/json'],
      ['tool-calls/03-shell.json', 'shell', '1.0.0', TOOL_CALL_SCHEMA, 'application/json'],
    ]);
    const first = JSON.parse(Buffer.from(artifacts[0]!.bytes).toString('utf8'));
    assert.equal(first.schema, TOOL_CALL_SCHEMA);
    assert.deepEqual(first.arguments, { method: 'GET', url: `http://127.0.0.1:${port}/status` });
    assert.equal(first.result.status, 200);
    const second = JSON.parse(Buffer.from(artifacts[1]!.bytes).toString('utf8'));
    assert.equal(second.error.code, 'MUSE_ERR_TOOL_FORBIDDEN');
    assert.equal(second.error.details.address, '169.254.169.254');
    assert.deepEqual(loop.take(j), [], 'taken once');
  });

  test('more calls than maxToolCalls fail the step, not retryable', async () => {
    const prompt = Array.from({ length: 3 }, (_, i) => `::tool-call shell {"command":"echo ${i}"}\n`).join('\n');
    await assert.rejects(executor.run(job(prompt, { maxToolCalls: 2, attempt: 2 }), new AbortController().signal), (err: unknown) => {
      assert.ok(err instanceof MuseError);
      assert.equal(err.code, 'MUSE_ERR_TOOL_CALLS_EXCEEDED');
      assert.equal(err.retryable, false);
      assert.deepEqual((err.details as { maxToolCalls: number; made: number }).maxToolCalls, 2);
      assert.deepEqual((err.details as { made: number }).made, 2);
      return true;
    });
  });

  test('a tool the step does not allow, or bad arguments, are errors fed back to the model', async () => {
    const prompt = ['::tool-call shell {"command":"id"}', '', '::tool-call http {"method":"DELETE","url":"http://x"}', '', '::tool-call teleport {}'].join('\n');
    const out = await executor.run(job(prompt, { tools: ['http'], attempt: 3 }), new AbortController().signal);
    assert.deepEqual(out.toolCalls!.map((c) => c.outcome), ['MUSE_ERR_TOOL_FORBIDDEN', 'MUSE_ERR_REQUEST_INVALID', 'MUSE_ERR_TOOL_FORBIDDEN']);
    assert.deepEqual(out.toolCalls!.map((c) => c.artifact), ['tool-calls/01-shell.json', 'tool-calls/02-http.json', 'tool-calls/03-teleport.json']);
    assert.match(out.text, /call_1_1 shell error: \{"error":\{"code":"MUSE_ERR_TOOL_FORBIDDEN","message":"tool \\"shell\\" is not one this step allows \(http\)"/);
  });

  test('results are scrubbed of secrets before they reach the model or an artifact', async () => {
    const scrubber = { scrubDeep: <T>(v: T): T => JSON.parse(JSON.stringify(v).replaceAll('/status', '[redacted:PATH]')) as T };
    const scrubbing = new ToolLoop(new AgentToolRunner({ http: new HttpTool({ allowlist: HostAllowlist.parse('*'), allowLoopbackPorts: new Set([port]) }) }), scrubber);
    const exec = new AgentStepExecutor(new LocalDeterministicProvider(), undefined, undefined, undefined, undefined, scrubbing);
    const j = job(`::tool-call http {"method":"GET","url":"http://127.0.0.1:${port}/status"}`, { tools: ['http'], attempt: 5 });
    const out = await exec.run(j, new AbortController().signal);
    const fedBack = out.text.slice(out.text.indexOf('tool results:'));
    assert.match(fedBack, /\[redacted:PATH\]/);
    assert.doesNotMatch(fedBack, /\/status/);
    const stored = Buffer.from(scrubbing.take(j)[0]!.bytes).toString('utf8');
    assert.match(stored, /\[redacted:PATH\]/);
    assert.doesNotMatch(stored, /\/status/);
  });

  test('a step without tools is one plain call: the script is only text', async () => {
    const out = await executor.run(job('::tool-call http {"method":"GET","url":"http://x"}', { tools: undefined, attempt: 4 }), new AbortController().signal);
    assert.equal(out.toolCalls, undefined);
    assert.match(out.text, /^\[muse-local#[0-9a-f]{8}\]/);
  });
});

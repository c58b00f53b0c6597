/**
 * The MCP server against a fake gateway on loopback, through the SDK's
 * client and in-memory transport: tool listing, argument validation and
 * error envelopes, what each tool sends to the REST API, resources.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { MuseApiClient } from './muse-api.client.js';
import { createMuseMcpServer } from './muse-mcp.server.js';
import { parseMuseUri } from './resource-subscriptions.js';
import { decodeContent, MUSE_TOOLS } from './tools.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const seen: Seen[] = [];
let gateway: Server;
let client: Client;

const NOT_FOUND = { error: { code: 'MUSE_ERR_RUN_NOT_FOUND', message: 'No run "run_x"', retryable: false } };

before(async () => {
  gateway = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const send = (status: number, json: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      if (req.method === 'POST' && req.url === '/v1/runs') return send(202, { id: 'run_new', status: 'pending' });
      if (req.url === '/v1/runs/run_x') return send(404, NOT_FOUND);
      if (req.url === '/v1/artifacts/art_1') return send(200, { id: 'art_1', size: 11, mediaType: 'text/plain' });
      if (req.url === '/v1/artifacts/art_1/content') return res.writeHead(206, { 'content-type': 'text/plain', 'content-range': 'bytes 6-10/11' }).end('world');
      if (req.url === '/v1/pools') return res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>');
      send(404, { error: { code: 'MUSE_ERR_ROUTE_NOT_FOUND', message: 'No such route', retryable: false } });
    });
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  const api = new MuseApiClient(`http://127.0.0.1:${(gateway.address() as AddressInfo).port}`, () => ({ token: 'muse_test', project: 'team-a' }));
  const server = createMuseMcpServer({ api, version: '0.0.0' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  client = new Client({ name: 'spec', version: '1' });
  await Promise.all([server.connect(a), client.connect(b)]);
});

after(async () => {
  await client.close();
  await new Promise((r) => gateway.close(r));
});

const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult & { structuredContent: Record<string, any> };

test('every tool is listed with a JSON Schema object built from its zod input', async () => {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name), MUSE_TOOLS.map((t) => t.name));
  for (const t of tools) {
    assert.equal(t.inputSchema.type, 'object', t.name);
    assert.equal((t.inputSchema as { additionalProperties?: unknown }).additionalProperties, false, `${t.name} rejects unknown fields`);
  }
  const wait = tools.find((t) => t.name === 'wait_for_run')!;
  assert.deepEqual(wait.inputSchema.required, ['runId'], 'defaults make timeoutMs and returnWhenWaiting optional');
  assert.equal(wait.annotations?.readOnlyHint, true);
});

test('arguments that fail the schema get the REST validation envelope, and nothing is sent', async () => {
  const before = seen.length;
  const res = await call('decide_approval', { runId: 'run_x', stepId: 'gate', decision: 'maybe', extra: 1 });
  assert.equal(res.isError, true);
  assert.equal(res.structuredContent.error.code, 'MUSE_ERR_REQUEST_INVALID');
  assert.equal(res.structuredContent.error.retryable, false);
  const paths = res.structuredContent.error.details.issues.map((i: { path: string }) => i.path).sort();
  assert.deepEqual(paths, ['', 'decision']);
  assert.deepEqual(JSON.parse((res.content[0] as { text: string }).text), res.structuredContent, 'the text block says the same');
  assert.equal(seen.length, before);
});

test("a REST error is the tool's error, verbatim; a non-JSON error body becomes a catalogue envelope", async () => {
  const res = await call('get_run', { runId: 'run_x' });
  assert.equal(res.isError, true);
  assert.deepEqual(res.structuredContent, NOT_FOUND);
  const pools = await call('list_pools', {});
  assert.equal(pools.structuredContent.error.code, 'MUSE_ERR_UNAVAILABLE');
  assert.equal(pools.structuredContent.error.retryable, true);
});

test('submit_run sends the body, the Idempotency-Key header, the credential and the project', async () => {
  const res = await call('submit_run', { workflow: 'wf', input: { a: 1 }, idempotencyKey: 'k-1' });
  assert.deepEqual(res.structuredContent, { id: 'run_new', status: 'pending' });
  const req = seen.findLast((s) => s.method === 'POST')!;
  assert.deepEqual(JSON.parse(req.body), { workflow: 'wf', input: { a: 1 } });
  assert.equal(req.headers['idempotency-key'], 'k-1');
  assert.equal(req.headers.authorization, 'Bearer muse_test');
  assert.equal(req.headers['muse-project'], 'team-a');
});

test('read_artifact asks for the byte range and decodes text', async () => {
  const res = await call('read_artifact', { artifactId: 'art_1', offset: 6, maxBytes: 100 });
  assert.equal(seen.findLast((s) => s.url.endsWith('/content'))!.headers.range, 'bytes=6-10');
  assert.equal(res.structuredContent.content, 'world');
  assert.equal(res.structuredContent.encoding, 'utf8');
  assert.equal(res.structuredContent.truncated, false);
});

test('resource URIs and content decoding', async () => {
  assert.deepEqual(parseMuseUri('muse://runs/run_1'), { kind: 'run', id: 'run_1' });
  assert.deepEqual(parseMuseUri('muse://artifacts/art_1'), { kind: 'artifact', id: 'art_1' });
  assert.equal(parseMuseUri('muse://runs/'), undefined);
  assert.equal(parseMuseUri('muse://runs/a/b'), undefined);
  assert.equal(parseMuseUri('https://example.test/x'), undefined);
  assert.deepEqual(decodeContent(new TextEncoder().encode('{"a":1}'), 'application/json'), { encoding: 'utf8', content: '{"a":1}' });
  assert.deepEqual(decodeContent(new Uint8Array([0xff, 0x00]), 'application/octet-stream'), { encoding: 'base64', content: '/wA=' });
  assert.deepEqual(decodeContent(new Uint8Array([0xe2, 0x82]), 'text/plain'), { encoding: 'base64', content: '4oI=' }, 'a cut character falls back to base64');
  const { resourceTemplates } = await client.listResourceTemplates();
  assert.deepEqual(resourceTemplates.map((r) => r.uriTemplate).sort(), ['muse://artifacts/{id}', 'muse://runs/{id}']);
  await assert.rejects(client.readResource({ uri: 'muse://runs/run_x' }), /No run/);
  await assert.rejects(client.subscribeResource({ uri: 'muse://nothing/1' }), /Not a Muse resource/);
});

/**
 * The http tool against real HTTP servers on loopback. Loopback is itself a
 * blocked range, so the "allowed" servers are let through by port with the
 * test-only `allowLoopbackPorts`; every other loopback port stays refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MuseError } from '@muse/contracts';
import { HostAllowlist } from './address-policy.js';
import { HttpTool, MAX_REDIRECTS } from './http-tool.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    handler(req, res, body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, seen };
}

function rejectsWith(code: string, check?: (e: MuseError) => void): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof MuseError, `expected a MuseError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    check?.(err);
    return true;
  };
}

describe('HttpTool', () => {
  let a: Awaited<ReturnType<typeof serve>>;
  let b: Awaited<ReturnType<typeof serve>>;
  let blocked: Awaited<ReturnType<typeof serve>>;
  let tool: HttpTool;
  const signal = new AbortController().signal;

  before(async () => {
    // `blocked` is a live server on a loopback port that is NOT let through: a refusal must not even connect to it.
    blocked = await serve((_req, res) => res.end('you should never see this'));
    b = await serve((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`b saw ${req.method} ${req.url}`);
    });
    a = await serve((req, res, body) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const to = u.searchParams.get('to');
      if (u.pathname === '/redirect' && to) {
        res.writeHead(Number(u.searchParams.get('status') ?? 302), { location: to });
        return res.end();
      }
      if (u.pathname === '/loop') {
        res.writeHead(302, { location: `/loop?n=${Number(u.searchParams.get('n') ?? 0) + 1}` });
        return res.end();
      }
      if (u.pathname === '/big') {
        res.setHeader('content-type', 'text/plain');
        // Chunked, no content-length: the cap must count bytes as they come.
        res.write('x'.repeat(600));
        return res.end('y'.repeat(600));
      }
      if (u.pathname === '/big-declared') {
        res.writeHead(200, { 'content-length': '5000' });
        return res.end('z'.repeat(5000));
      }
      if (u.pathname === '/hang') return; // never answers
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-multi', ['one', 'two']);
      res.end(JSON.stringify({ method: req.method, path: u.pathname, body, ct: req.headers['content-type'] ?? null }));
    });
    tool = new HttpTool({
      allowlist: HostAllowlist.parse('127.0.0.1,[::1],localhost,pinned.test,mixed.test'),
      allowLoopbackPorts: new Set([a.port, b.port]),
      timeoutMs: 1_500,
      maxResponseBytes: 1_024,
    });
  });

  after(async () => {
    for (const s of [a, b, blocked]) {
      s?.server.closeAllConnections();
      await new Promise<void>((r) => s?.server.close(() => r()) ?? r());
    }
  });

  test('GET an allowed host: status, headers, body and the final url', async () => {
    const out = await tool.fetch({ method: 'GET', url: `http://127.0.0.1:${a.port}/hello?q=1` }, signal);
    assert.equal(out.status, 200);
    assert.deepEqual(JSON.parse(out.body), { method: 'GET', path: '/hello', body: '', ct: null });
    assert.equal(out.headers['content-type'], 'application/json');
    assert.equal(out.headers['x-multi'], 'one, two');
    assert.equal(out.url, `http://127.0.0.1:${a.port}/hello?q=1`);
    assert.match(String(a.seen.at(-1)!.headers['user-agent']), /^muse-http-tool\//);
  });

  test('POST sends the body and the given headers', async () => {
    const out = await tool.fetch({ method: 'POST', url: `http://127.0.0.1:${a.port}/post`, headers: { 'content-type': 'application/json' }, body: '{"a":1}' }, signal);
    assert.deepEqual(JSON.parse(out.body), { method: 'POST', path: '/post', body: '{"a":1}', ct: 'application/json' });
  });

  test('loopback ports not let through are refused before connecting: 127.0.0.1, [::1], localhost', async () => {
    const before = blocked.seen.length;
    for (const url of [`http://127.0.0.1:${blocked.port}/`, 'http://127.0.0.1:6379/', `http://[::1]:${blocked.port}/`, `http://localhost:${blocked.port}/`]) {
      await assert.rejects(
        tool.fetch({ method: 'GET', url }, signal),
        rejectsWith('MUSE_ERR_TOOL_FORBIDDEN', (e) => {
          const d = e.details as { rule: string; address: string };
          assert.equal(d.rule, 'loopback', url);
          assert.match(d.address, /^(127\.0\.0\.1|::1)$/);
          assert.equal(e.retryable, false);
        }),
      );
    }
    assert.equal(blocked.seen.length, before, 'no request reached the blocked server');
  });

  test('hosts outside the allowlist and non-http schemes are refused', async () => {
    await assert.rejects(tool.fetch({ method: 'GET', url: 'http://example.com/' }, signal), rejectsWith('MUSE_ERR_TOOL_FORBIDDEN', (e) => assert.equal((e.details as { rule: string }).rule, 'host-allowlist')));
    await assert.rejects(tool.fetch({ method: 'GET', url: 'file:///etc/passwd' }, signal), rejectsWith('MUSE_ERR_TOOL_FORBIDDEN', (e) => assert.equal((e.details as { rule: string }).rule, 'scheme')));
    await assert.rejects(tool.fetch({ method: 'GET', url: `http://user:pw@127.0.0.1:${a.port}/` }, signal), rejectsWith('MUSE_ERR_TOOL_FORBIDDEN', (e) => assert.equal((e.details as { rule: string }).rule, 'url-credentials')));
    const none = new HttpTool({ allowlist: HostAllowlist.parse('') });
    await assert.rejects(none.fetch({ method: 'GET', url: 'https://example.com/' }, signal), rejectsWith('MUSE_ERR_TOOL_FORBIDDEN', (e) => assert.match((e.details as { reason: string }).reason, /empty/)));
  });

  test('metadata and private addresses are refused even when the allowlist says *', async () => {
    const any = new HttpTool({ allowlist: HostAllowlist.parse('*'), allowLoopbackPorts: new Set([a.port]) });
    for (const [url, rule] of [
      ['http://169.254.169.254/latest/meta-data/', 'metadata'],
      ['http://[fd00:ec2::254]/', 'metadata'],
      ['http://10.1.2.3/', 'private'],
      ['http://[fe80::1]/', 'linkLocal'],
      ['http://0x7f.1:6379/', 'loopback'], // the URL parser makes this 127.0.0.1
      ['http://2130706433:6379/', 'loopback'],
      ['http://0.0.0.0:6379/', 'unspecified'],
      ['http://[::ffff:127.0.0.1]:6379/', 'loopback'],
    ] as const) {
      await assert.rejects(any.fetch({ method: 'GET', url }, signal), rejectsWith('MUSE_ERR_TOOL_FORBIDDEN', (e) => assert.equal((e.details as { rule: string }).rule, rule, url)));
    }
  });

  test('a host resolving to any blocked address is refused (every address is checked)', async () => {
    const mixed = new HttpTool({
      allowlist: HostAllowlist.parse('mixed.test'),
      resolve: async () => [{ address: '93.184.215.14', family: 4 }, { address: '10.0.0.7', family: 4 }],
    });
    await assert.rejects(mixed.fetch({ method: 'GET', url: 'http://mixed.test/' }, signal), rejectsWith('MUSE_ERR_TOOL_FORBIDDEN', (e) => {
      const d = e.details as { rule: string; address: string; host: string };
      assert.deepEqual([d.rule, d.address, d.host], ['private', '10.0.0.7', 'mixed.test']);
    }));
  });

  test('the connection goes to the address that was checked (pinned: no second lookup to rebind)', async () => {
    let lookups = 0;
    const pinned = new HttpTool({
      allowlist: HostAllowlist.parse('pinned.test'),
      allowLoopbackPorts: new Set([a.port]),
      // A rebinding resolver: the first answer passes the rules, any later one would point at a private address.
      resolve: async () => (lookups++ === 0 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '10.0.0.9', family: 4 }]),
    });
    const out = await pinned.fetch({ method: 'GET', url: `http://pinned.test:${a.port}/pinned` }, signal);
    assert.equal(out.status, 200);
    assert.equal(lookups, 1, 'one lookup for one hop: the socket used its checked answer');
    assert.equal(a.seen.at(-1)!.headers.host, `pinned.test:${a.port}`, 'the Host header keeps the name');
  });

  test('a redirect to an allowed host is followed; credentials do not cross origins', async () => {
    const to = `http://127.0.0.1:${b.port}/landed`;
    const out = await tool.fetch({ method: 'GET', url: `http://127.0.0.1:${a.port}/redirect?to=${encodeURIComponent(to)}`, headers: { authorization: 'Bearer s3cret', 'x-keep': 'yes' } }, signal);
    assert.equal(out.status, 200);
    assert.equal(out.body, 'b saw GET /landed');
    assert.equal(out.url, to);
    const seenByB = b.seen.at(-1)!;
    assert.equal(seenByB.headers.authorization, undefined);
    assert.equal(seenByB.headers['x-keep'], 'yes');
  });

  test('303 after a POST becomes a GET without the body; 307 keeps both', async () => {
    const to = encodeURIComponent(`http://127.0.0.1:${a.port}/after`);
    const see = await tool.fetch({ method: 'POST', url: `http://127.0.0.1:${a.port}/redirect?status=303&to=${to}`, body: 'payload' }, signal);
    assert.deepEqual(JSON.parse(see.body), { method: 'GET', path: '/after', body: '', ct: null });
    const keep = await tool.fetch({ method: 'POST', url: `http://127.0.0.1:${a.port}/redirect?status=307&to=${to}`, body: 'payload' }, signal);
    assert.deepEqual(JSON.parse(keep.body), { method: 'POST', path: '/after', body: 'payload', ct: null });
  });

  test('a redirect from an allowed host to loopback, metadata or another scheme is refused at that hop', async () => {
    const before = blocked.seen.length;
    for (const [to, rule] of [
      [`http://127.0.0.1:${blocked.port}/`, 'loopback'],
      ['http://127.0.0.1:6379/', 'loopback'],
      [`http://[::1]:${blocked.port}/`, 'loopback'],
      ['http://169.254.169.254/latest/meta-data/iam/', 'metadata'],
      ['http://example.com/', 'host-allowlist'],
      ['ftp://127.0.0.1/', 'scheme'],
    ] as const) {
      await assert.rejects(
        tool.fetch({ method: 'GET', url: `http://127.0.0.1:${a.port}/redirect?to=${encodeURIComponent(to)}` }, signal),
        rejectsWith('MUSE_ERR_TOOL_FORBIDDEN', (e) => {
          const d = e.details as { rule: string; redirect?: number };
          assert.equal(d.rule, rule, to);
          assert.equal(d.redirect, 1, 'the refusal names the hop');
        }),
      );
    }
    assert.equal(blocked.seen.length, before);
  });

  test(`more than ${MAX_REDIRECTS} redirects fail, not retryable`, async () => {
    await assert.rejects(
      tool.fetch({ method: 'GET', url: `http://127.0.0.1:${a.port}/loop` }, signal),
      rejectsWith('MUSE_ERR_TOOL_HTTP_FAILED', (e) => {
        assert.equal(e.retryable, false);
        assert.equal((e.details as { reason: string }).reason, 'too-many-redirects');
      }),
    );
  });

  test('bodies past the cap fail (declared or streamed)', async () => {
    for (const path of ['/big', '/big-declared']) {
      await assert.rejects(tool.fetch({ method: 'GET', url: `http://127.0.0.1:${a.port}${path}` }, signal), rejectsWith('MUSE_ERR_TOOL_OUTPUT_TOO_LARGE', (e) => assert.equal((e.details as { limitBytes: number }).limitBytes, 1_024)));
    }
  });

  test('no answer within the timeout fails, retryable; the caller’s abort passes through as it is', async () => {
    await assert.rejects(
      tool.fetch({ method: 'GET', url: `http://127.0.0.1:${a.port}/hang` }, signal),
      rejectsWith('MUSE_ERR_TOOL_HTTP_FAILED', (e) => {
        assert.equal(e.retryable, true);
        assert.equal((e.details as { reason: string }).reason, 'timeout');
      }),
    );
    const stop = new AbortController();
    const reason = new Error('step stopped');
    setTimeout(() => stop.abort(reason), 100);
    await assert.rejects(tool.fetch({ method: 'GET', url: `http://127.0.0.1:${a.port}/hang` }, stop.signal), (err) => err === reason);
  });

  test('a connection refused is a retryable failure', async () => {
    const port = blocked.port;
    const closed = new HttpTool({ allowlist: HostAllowlist.parse('127.0.0.1'), allowLoopbackPorts: new Set([port]) });
    blocked.server.closeAllConnections();
    await new Promise<void>((r) => blocked.server.close(() => r()));
    await assert.rejects(closed.fetch({ method: 'GET', url: `http://127.0.0.1:${port}/` }, signal), rejectsWith('MUSE_ERR_TOOL_HTTP_FAILED', (e) => {
      assert.equal(e.retryable, true);
      assert.equal((e.details as { reason: string }).reason, 'ECONNREFUSED');
    }));
    blocked = await serve((_req, res) => res.end('late'));
  });
});

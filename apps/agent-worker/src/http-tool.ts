/**
 * The `http` tool: one GET or POST to an allowed host, safe against SSRF
 * (issue 4). For the first request and every redirect hop it
 *
 *   1. takes only `http:` and `https:` URLs, without credentials in them;
 *   2. checks the host against the allowlist (MUSE_HTTP_ALLOW_HOSTS) — an IP
 *      literal against the address rules first;
 *   3. resolves the host itself and refuses when *any* address is blocked
 *      (loopback, private, link-local, metadata...: address-policy.ts);
 *   4. connects to the address it checked (a `lookup` that returns it), so a
 *      second DNS answer (rebinding) cannot swap in another; TLS still
 *      verifies the certificate against the host name;
 *   5. follows redirects itself, at most MAX_REDIRECTS, each hop from step 1.
 *
 * The whole exchange has one timeout, and the body a size cap.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { MuseError, type HttpOutput } from '@muse/contracts';
import { classifyAddress, type HostAllowlist, normalizeHost } from './address-policy.js';

/** Bumped when the tool's behaviour or output changes; stored with every artifact it makes (lineage). */
export const HTTP_TOOL_VERSION = '1.0.0';
/** Schema name of the tool's output artifacts. */
export const HTTP_OUTPUT_SCHEMA = 'muse.http-response/v1';
/** Redirects followed before the request fails. */
export const MAX_REDIRECTS = 5;
const USER_AGENT = `muse-http-tool/${HTTP_TOOL_VERSION}`;
/** Headers that do not follow a redirect to another origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

export interface HttpToolRequest {
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface HttpToolOptions {
  allowlist: HostAllowlist;
  /** TEST ONLY: loopback ports let through (MUSE_HTTP_ALLOW_LOOPBACK_PORTS). */
  allowLoopbackPorts?: ReadonlySet<number>;
  /** Whole exchange, redirects included, in ms. @default 30_000 */
  timeoutMs?: number;
  /** Largest response body, in bytes. @default 1 MiB */
  maxResponseBytes?: number;
  /** @internal for tests: the resolver (`dns.lookup` with `all: true`). */
  resolve?: (host: string) => Promise<Array<{ address: string; family: number }>>;
}

/** One hop's target after its checks: where to connect. */
interface CheckedTarget {
  url: URL;
  host: string;
  port: number;
  address: string;
  family: 4 | 6;
}

export class HttpTool {
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly resolveHost: NonNullable<HttpToolOptions['resolve']>;

  constructor(private readonly opts: HttpToolOptions) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxBytes = opts.maxResponseBytes ?? 1024 * 1024;
    this.resolveHost = opts.resolve ?? ((host) => dnsLookup(host, { all: true, verbatim: true }));
  }

  /**
   * @throws MuseError MUSE_ERR_TOOL_FORBIDDEN (a refused target; not retried), MUSE_ERR_TOOL_HTTP_FAILED (DNS,
   * connection, timeout; retried — too many redirects is not), MUSE_ERR_TOOL_OUTPUT_TOO_LARGE; the caller's abort
   * reason when `signal` aborts.
   */
  async fetch(req: HttpToolRequest, signal: AbortSignal): Promise<HttpOutput> {
    const own = AbortSignal.timeout(this.timeoutMs);
    const both = AbortSignal.any([signal, own]);
    let method = req.method;
    let body = req.body;
    let headers = { ...(req.headers ?? {}) };
    let url = parseUrl(req.url);
    try {
      for (let hop = 0; ; hop++) {
        const target = await this.check(url, hop);
        const res = await this.send(target, method, headers, body, both);
        const location = res.headers.location;
        if (isRedirect(res.statusCode) && location !== undefined) {
          res.destroy();
          if (hop >= MAX_REDIRECTS) {
            throw new MuseError('MUSE_ERR_TOOL_HTTP_FAILED', `more than ${MAX_REDIRECTS} redirects (last to ${location})`, {
              retryable: false,
              details: { url: url.href, reason: 'too-many-redirects', maxRedirects: MAX_REDIRECTS },
            });
          }
          const next = parseUrl(location, url);
          // 303, and 301/302 after a POST, turn into a GET without a body (what browsers and fetch do).
          if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
            method = 'GET';
            body = undefined;
          }
          if (next.origin !== url.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.has(k.toLowerCase())));
          url = next;
          continue;
        }
        return { status: res.statusCode ?? 0, headers: flatHeaders(res), body: await this.readBody(res, url), url: url.href };
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (err instanceof MuseError) throw err;
      if (own.aborted) {
        throw new MuseError('MUSE_ERR_TOOL_HTTP_FAILED', `no complete answer from ${url.host} within ${this.timeoutMs} ms`, { details: { url: url.href, reason: 'timeout', timeoutMs: this.timeoutMs }, cause: err });
      }
      const code = (err as NodeJS.ErrnoException).code;
      throw new MuseError('MUSE_ERR_TOOL_HTTP_FAILED', `request to ${url.host} failed: ${(err as Error).message}`, { details: { url: url.href, reason: code ?? 'error' }, cause: err });
    }
  }

  /** Steps 1-3 for one hop: scheme, allowlist, every resolved address. */
  private async check(url: URL, hop: number): Promise<CheckedTarget> {
    const where = { url: url.href, ...(hop > 0 ? { redirect: hop } : {}) };
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw forbidden(`only http and https URLs may be fetched, not ${url.protocol}`, { ...where, rule: 'scheme' });
    }
    const host = normalizeHost(url.hostname);
    const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    const literal = isIP(host) !== 0;
    // An IP literal is judged by its address rule first (the more telling refusal: "metadata", not "not allowed");
    // a name by the allowlist first, so a name nobody allowed is never even looked up.
    if (literal) this.checkAddresses([{ address: host, family: isIP(host) }], host, port, where);
    if (!this.opts.allowlist.allows(host)) {
      throw forbidden(`host ${host} is not in the http tool's allowlist (MUSE_HTTP_ALLOW_HOSTS)`, { ...where, host, rule: 'host-allowlist', reason: this.opts.allowlist.empty ? 'the allowlist is empty: no host is allowed' : 'no entry matches' });
    }
    let addresses: Array<{ address: string; family: number }>;
    if (literal) addresses = [{ address: host, family: isIP(host) }];
    else {
      try {
        addresses = await this.resolveHost(host);
      } catch (err) {
        throw new MuseError('MUSE_ERR_TOOL_HTTP_FAILED', `could not resolve ${host}: ${(err as Error).message}`, { details: { ...where, host, reason: 'dns' }, cause: err });
      }
      if (addresses.length === 0) throw new MuseError('MUSE_ERR_TOOL_HTTP_FAILED', `${host} has no address`, { details: { ...where, host, reason: 'dns' } });
    }
    this.checkAddresses(addresses, host, port, where);
    const first = addresses[0]!;
    return { url, host, port, address: first.address, family: first.family === 6 ? 6 : 4 };
  }

  /** Every address, not just the first: a host answering with one public and one private address is refused. */
  private checkAddresses(addresses: ReadonlyArray<{ address: string; family?: number }>, host: string, port: number, where: Record<string, unknown>): void {
    for (const a of addresses) {
      const v = classifyAddress(a.address, port, this.opts.allowLoopbackPorts ? { allowLoopbackPorts: this.opts.allowLoopbackPorts } : {});
      if (!v.allowed) {
        throw forbidden(`${host}${host === v.address ? '' : ` (${v.address})`}:${port} is refused: ${v.reason}`, { ...where, host, address: v.address, port, rule: v.rule, reason: v.reason });
      }
    }
  }

  /** Step 4: the request, connected to the checked address. Resolves with the response head. */
  private send(t: CheckedTarget, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal): Promise<IncomingMessage> {
    const pinned: LookupFunction = (_host, options, cb) => {
      if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address: t.address, family: t.family }]);
      else cb(null, t.address, t.family);
    };
    const payload = body !== undefined ? Buffer.from(body, 'utf8') : undefined;
    const opts: RequestOptions = {
      method,
      host: t.host,
      port: t.port,
      path: `${t.url.pathname}${t.url.search}`,
      headers: {
        'user-agent': USER_AGENT,
        ...headers,
        host: t.url.host,
        ...(payload ? { 'content-length': String(payload.length) } : {}),
      },
      lookup: pinned,
      // No pooling: a socket is only ever used for the address checked for it.
      agent: false,
      signal,
    };
    return new Promise<IncomingMessage>((resolve, reject) => {
      const r = (t.url.protocol === 'https:' ? httpsRequest : httpRequest)({ ...opts, ...(t.url.protocol === 'https:' ? { servername: isIP(t.host) ? undefined : t.host } : {}) }, resolve);
      r.on('error', reject);
      r.end(payload);
    });
  }

  /** The body as UTF-8 text, refused past the cap. */
  private async readBody(res: IncomingMessage, url: URL): Promise<string> {
    const tooLarge = () =>
      new MuseError('MUSE_ERR_TOOL_OUTPUT_TOO_LARGE', `the response of ${url.host} is larger than ${this.maxBytes} bytes (MUSE_HTTP_MAX_RESPONSE_BYTES)`, {
        details: { url: url.href, limitBytes: this.maxBytes },
      });
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.maxBytes) {
      res.destroy();
      throw tooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res) {
      size += (c as Buffer).length;
      if (size > this.maxBytes) {
        res.destroy();
        throw tooLarge();
      }
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

function forbidden(message: string, details: Record<string, unknown>): MuseError {
  return new MuseError('MUSE_ERR_TOOL_FORBIDDEN', message, { details });
}

function parseUrl(text: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(text, base);
  } catch {
    throw new MuseError('MUSE_ERR_TOOL_FORBIDDEN', `not a valid URL: ${JSON.stringify(text.slice(0, 200))}`, { details: { url: text.slice(0, 2_000), rule: 'url' } });
  }
  if (url.username !== '' || url.password !== '') {
    throw new MuseError('MUSE_ERR_TOOL_FORBIDDEN', 'URLs with credentials (user:password@) are refused; send an Authorization header instead', { details: { url: `${url.protocol}//${url.host}${url.pathname}`, rule: 'url-credentials' } });
  }
  return url;
}

function isRedirect(status: number | undefined): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** Response headers, lower-case names, repeated ones joined with `, `. */
function flatHeaders(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * Where the http tool may connect: a host allowlist (MUSE_HTTP_ALLOW_HOSTS)
 * and address rules applied to every address a host resolves to, on every
 * hop (SSRF protection, issue 4). Pure: the tool resolves, this decides.
 *
 * Only global unicast addresses pass. Classification is ipaddr.js's special
 * ranges (IPv4-mapped IPv6 is unwrapped first, so `::ffff:127.0.0.1` is
 * loopback); cloud metadata endpoints get a rule of their own so a refusal
 * says what it protected.
 */
import ipaddr from 'ipaddr.js';

/** Why an address is refused. */
export const BLOCK_RULES = {
  loopback: 'loopback (127.0.0.0/8, ::1)',
  private: 'private (RFC 1918)',
  uniqueLocal: 'private (RFC 4193 unique local, fc00::/7)',
  linkLocal: 'link-local (169.254.0.0/16, fe80::/10)',
  metadata: 'cloud metadata endpoint',
  carrierGradeNat: 'carrier-grade NAT (RFC 6598, 100.64.0.0/10)',
  unspecified: 'unspecified (0.0.0.0, ::)',
  multicast: 'multicast',
  broadcast: 'broadcast',
  reserved: 'reserved or special-purpose',
} as const;
export type BlockRule = keyof typeof BLOCK_RULES;

/** Instance metadata services: AWS/GCP/Azure/OpenStack (IPv4 and AWS's IPv6), AWS ECS task metadata, Alibaba Cloud. */
const METADATA_ADDRESSES = new Set(['169.254.169.254', 'fd00:ec2::254', '169.254.170.2', '100.100.100.200']);

export type AddressVerdict = { allowed: true; address: string } | { allowed: false; address: string; rule: BlockRule; reason: string };

export interface AddressPolicyOptions {
  /**
   * Loopback ports let through despite the loopback rule: TEST ONLY
   * (MUSE_HTTP_ALLOW_LOOPBACK_PORTS), so end-to-end tests can serve an
   * allowed host on 127.0.0.1. No other rule has an exception.
   */
  allowLoopbackPorts?: ReadonlySet<number>;
}

/** The verdict on one resolved address (IPv4 or IPv6 text; `[...]` brackets and a `%zone` are accepted). */
export function classifyAddress(address: string, port: number, opts: AddressPolicyOptions = {}): AddressVerdict {
  const text = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.process(text);
  } catch {
    return block(address, 'reserved', 'not an IP address');
  }
  const normal = ip.kind() === 'ipv6' ? (ip as ipaddr.IPv6).toRFC5952String() : ip.toString();
  if (METADATA_ADDRESSES.has(normal)) return block(normal, 'metadata');
  const range = ip.range();
  switch (range) {
    case 'unicast':
      return { allowed: true, address: normal };
    case 'loopback':
      return opts.allowLoopbackPorts?.has(port) ? { allowed: true, address: normal } : block(normal, 'loopback');
    case 'private':
    case 'uniqueLocal':
    case 'linkLocal':
    case 'carrierGradeNat':
    case 'unspecified':
    case 'multicast':
    case 'broadcast':
      return block(normal, range);
    default:
      // NAT64, 6to4, Teredo, documentation, benchmarking, AS112...: special-purpose, or able to carry a private IPv4 inside.
      return block(normal, 'reserved', `${BLOCK_RULES.reserved} (${range})`);
  }
}

function block(address: string, rule: BlockRule, reason: string = BLOCK_RULES[rule]): AddressVerdict {
  return { allowed: false, address, rule, reason };
}

/**
 * The hosts the http tool may name, from MUSE_HTTP_ALLOW_HOSTS: `api.example.com`
 * (that host), `*.example.com` (its subdomains, not itself), `*` (any host),
 * IP literals as written (`203.0.113.7`, `[2001:db8::1]`). Empty = nothing is
 * allowed: an operator opts in host by host. Matching ignores case and one
 * trailing dot. The address rules apply to allowed hosts all the same.
 */
export class HostAllowlist {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];
  private readonly any: boolean;

  constructor(readonly entries: readonly string[]) {
    let any = false;
    for (const raw of entries) {
      const e = normalizeHost(raw);
      if (e === '') continue;
      if (e === '*') any = true;
      else if (e.startsWith('*.')) this.suffixes.push(e.slice(1));
      else this.exact.add(e);
    }
    this.any = any;
  }

  static parse(list: string): HostAllowlist {
    return new HostAllowlist(list.split(',').map((s) => s.trim()).filter((s) => s !== ''));
  }

  get empty(): boolean {
    return !this.any && this.exact.size === 0 && this.suffixes.length === 0;
  }

  allows(host: string): boolean {
    const h = normalizeHost(host);
    if (this.any) return true;
    if (this.exact.has(h)) return true;
    return this.suffixes.some((s) => h.endsWith(s) && h.length > s.length);
  }
}

/** Lower case, without IPv6 brackets and one trailing dot. */
export function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

/** `"8080, 9000"` -> {8080, 9000}. */
export function parsePorts(list: string): Set<number> {
  return new Set(list.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number).filter((n) => Number.isInteger(n) && n > 0 && n < 65_536));
}

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyAddress, HostAllowlist, normalizeHost, parsePorts } from './address-policy.js';

describe('classifyAddress', () => {
  const refused: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'],
    ['127.1.2.3', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['::ffff:192.168.1.1', 'private'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456:789a::1', 'uniqueLocal'],
    ['169.254.1.1', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['fe80::1%eth0', 'linkLocal'],
    ['169.254.169.254', 'metadata'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.254', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['64:ff9b::7f00:1', 'reserved'], // NAT64 of 127.0.0.1
    ['2002:7f00:1::', 'reserved'], // 6to4 of 127.0.0.1
    ['192.0.2.10', 'reserved'], // documentation
    ['not-an-ip', 'reserved'],
  ];
  for (const [address, rule] of refused) {
    test(`${address} is refused as ${rule}`, () => {
      const v = classifyAddress(address, 80);
      assert.equal(v.allowed, false, `${address} should be refused`);
      if (!v.allowed) {
        assert.equal(v.rule, rule);
        assert.ok(v.reason.length > 0);
      }
    });
  }

  for (const address of ['93.184.215.14', '8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e']) {
    test(`${address} (global unicast) is allowed`, () => {
      assert.deepEqual(classifyAddress(address, 443), { allowed: true, address });
    });
  }

  test('the test-only loopback ports open loopback on those ports and nothing else', () => {
    const opts = { allowLoopbackPorts: new Set([8080]) };
    assert.equal(classifyAddress('127.0.0.1', 8080, opts).allowed, true);
    assert.equal(classifyAddress('::1', 8080, opts).allowed, true);
    assert.equal(classifyAddress('127.0.0.1', 6379, opts).allowed, false);
    // No other rule has an exception, whatever the port.
    assert.equal(classifyAddress('10.0.0.1', 8080, opts).allowed, false);
    assert.equal(classifyAddress('169.254.169.254', 8080, opts).allowed, false);
  });

  test('the verdict names the normalized address', () => {
    const v = classifyAddress('::ffff:169.254.169.254', 80);
    assert.equal(v.address, '169.254.169.254');
    const w = classifyAddress('0:0:0:0:0:0:0:1', 80);
    assert.equal(w.address, '::1');
  });
});

describe('HostAllowlist', () => {
  test('exact hosts, subdomain patterns and IP literals; case and a trailing dot ignored', () => {
    const a = HostAllowlist.parse(' api.example.com, *.corp.example , 203.0.113.7,[2001:db8::1] ');
    assert.equal(a.allows('api.example.com'), true);
    assert.equal(a.allows('API.Example.COM.'), true);
    assert.equal(a.allows('example.com'), false);
    assert.equal(a.allows('evil-api.example.com'), false);
    assert.equal(a.allows('api.example.com.evil.net'), false);
    assert.equal(a.allows('x.corp.example'), true);
    assert.equal(a.allows('a.b.corp.example'), true);
    assert.equal(a.allows('corp.example'), false, '*.x matches subdomains, not x itself');
    assert.equal(a.allows('evilcorp.example'), false);
    assert.equal(a.allows('203.0.113.7'), true);
    assert.equal(a.allows('[2001:db8::1]'), true);
    assert.equal(a.allows('2001:db8::1'), true);
    assert.equal(a.empty, false);
  });

  test('empty allows nothing; * allows any host', () => {
    const none = HostAllowlist.parse('');
    assert.equal(none.empty, true);
    assert.equal(none.allows('example.com'), false);
    const any = HostAllowlist.parse('*');
    assert.equal(any.allows('anything.example'), true);
    assert.equal(any.allows('127.0.0.1'), true, 'the allowlist is only the first gate: address rules still apply');
  });

  test('normalizeHost and parsePorts', () => {
    assert.equal(normalizeHost('[::1]'), '::1');
    assert.equal(normalizeHost('Example.COM.'), 'example.com');
    assert.deepEqual([...parsePorts(' 80, 8080,,70000, x ')], [80, 8080]);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { artifactContentUrl, downstreamHeaders, upstreamRequestHeaders } from './artifact-proxy.js';

test('content URL escapes the id and tolerates a trailing slash', () => {
  assert.equal(artifactContentUrl('http://s:3003/', 'a/b c'), 'http://s:3003/v1/artifacts/a%2Fb%20c/content');
  assert.equal(artifactContentUrl('http://s:3003', 'art_1'), 'http://s:3003/v1/artifacts/art_1/content');
});

test('Range (and conditionals) go upstream; nothing else does, and compression is refused', () => {
  const h = upstreamRequestHeaders({ range: 'bytes=0-99', authorization: 'Bearer x', cookie: 'c', host: 'gw' });
  assert.deepEqual(h, { 'accept-encoding': 'identity', range: 'bytes=0-99' });
  assert.deepEqual(upstreamRequestHeaders({}), { 'accept-encoding': 'identity' });
});

test('status-describing headers come back; hop-by-hop and others do not', () => {
  const up = new Headers({
    'content-type': 'text/plain',
    'content-length': '100',
    'content-range': 'bytes 0-99/1000',
    'accept-ranges': 'bytes',
    connection: 'keep-alive',
    'set-cookie': 'x=y',
    'transfer-encoding': 'chunked',
  });
  assert.deepEqual(downstreamHeaders(up), {
    'content-type': 'text/plain',
    'content-length': '100',
    'content-range': 'bytes 0-99/1000',
    'accept-ranges': 'bytes',
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpException, NotFoundException } from '@nestjs/common';
import { ErrorEnvelopeSchema, MuseError } from '@muse/contracts';
import { toHttpError } from './http-error.mapper.js';

/** A stand-in for the FastifyError Fastify raises while reading a body. */
function fastifyError(code: string, statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { name: 'FastifyError', code, statusCode });
}

test('a MuseError keeps its code, status and details', () => {
  const res = toHttpError(new MuseError('MUSE_ERR_WORKFLOW_INVALID', 'bad', { details: { issues: [] } }));
  assert.equal(res.status, 400);
  assert.deepEqual(res.body, { error: { code: 'MUSE_ERR_WORKFLOW_INVALID', message: 'bad', retryable: false, details: { issues: [] } } });
  assert.equal(res.internal, false);
});

test("Fastify's body errors, wrapped by Nest or not, get Muse codes", () => {
  const big = fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413, 'Request body is too large');
  const wrapped = new HttpException(big.message, 413, { cause: big });
  for (const err of [big, wrapped]) {
    const res = toHttpError(err);
    assert.equal(res.status, 413);
    assert.equal(res.body.error.code, 'MUSE_ERR_REQUEST_TOO_LARGE');
  }
  const json = toHttpError(new HttpException('x', 400, { cause: fastifyError('FST_ERR_CTP_INVALID_JSON_BODY', 400, "Body is not valid JSON") }));
  assert.equal(json.body.error.code, 'MUSE_ERR_REQUEST_MALFORMED_JSON');
  const media = toHttpError(new HttpException('x', 415, { cause: fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'Unsupported Media Type') }));
  assert.equal(media.status, 415);
  assert.equal(media.body.error.code, 'MUSE_ERR_REQUEST_MEDIA_TYPE');
});

test("Nest's not-found becomes MUSE_ERR_ROUTE_NOT_FOUND naming the route", () => {
  const res = toHttpError(new NotFoundException('Cannot GET /nope'));
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, 'MUSE_ERR_ROUTE_NOT_FOUND');
  assert.equal(res.body.error.message, 'No route GET /nope');
});

test('a 503 HttpException (readiness) becomes MUSE_ERR_UNAVAILABLE with the checks as details', () => {
  const res = toHttpError(new HttpException({ ok: false, checks: { redis: 'down' } }, 503));
  assert.equal(res.status, 503);
  assert.equal(res.body.error.code, 'MUSE_ERR_UNAVAILABLE');
  assert.equal(res.body.error.retryable, true);
  assert.deepEqual(res.body.error.details, { ok: false, checks: { redis: 'down' } });
  assert.equal(res.internal, false);
});

test('anything else is a 500 that leaks nothing but the request id', () => {
  const res = toHttpError(new TypeError('cannot read x of undefined at /secret/path'), 'req-7');
  assert.equal(res.status, 500);
  assert.equal(res.internal, true);
  assert.deepEqual(res.body, { error: { code: 'MUSE_ERR_INTERNAL', message: 'Internal error', retryable: true, details: { requestId: 'req-7' } } });
  const muse500 = toHttpError(new MuseError('MUSE_ERR_INTERNAL', 'redis key muse:x broke'));
  assert.equal(muse500.body.error.message, 'Internal error');
});

test('every mapped body fits the envelope schema', () => {
  const errs: unknown[] = [new Error('x'), 'a string', null, new HttpException('m', 405), new MuseError('MUSE_ERR_RUN_TERMINAL')];
  for (const err of errs) ErrorEnvelopeSchema.parse(toHttpError(err).body);
  assert.equal(toHttpError(new HttpException('m', 405)).status, 405);
});

test('Redis and NATS being down is a retryable 503, not a 500', () => {
  class MaxRetriesPerRequestError extends Error {
    override get name() {
      return 'MaxRetriesPerRequestError';
    }
  }
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
  const nats = Object.assign(new Error('timeout'), { name: 'TimeoutError' });
  for (const err of [new MaxRetriesPerRequestError('Reached the max retries per request limit'), refused, nats]) {
    const res = toHttpError(err);
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'MUSE_ERR_UNAVAILABLE');
    assert.equal(res.body.error.retryable, true);
    assert.equal(res.internal, false);
  }
});

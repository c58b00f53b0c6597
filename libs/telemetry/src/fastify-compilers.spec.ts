import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { lazySchemaController } from './fastify-compilers.js';

const fromAdapter = createRequire(createRequire(import.meta.url).resolve('@nestjs/platform-fastify'));
const fastifyPath = fromAdapter.resolve('fastify');
const fastify = fromAdapter(fastifyPath) as (opts: object) => any;
const fromFastify = createRequire(fastifyPath);
const loaded = (pkg: string) => fromFastify.resolve(pkg) in fromFastify.cache;

test('a server without route schemas never loads the schema compilers; a route with schemas loads and uses them', async () => {
  const app = fastify({ schemaController: lazySchemaController() });
  app.get('/plain', async () => ({ ok: true, extra: 1 }));
  await app.ready();
  const plain = await app.inject({ method: 'GET', url: '/plain' });
  assert.deepEqual(plain.json(), { ok: true, extra: 1 });
  assert.equal(loaded('@fastify/ajv-compiler'), false);
  assert.equal(loaded('@fastify/fast-json-stringify-compiler'), false);
  await app.close();

  const typed = fastify({ schemaController: lazySchemaController() });
  typed.post('/typed', {
    schema: {
      body: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
      response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } },
    },
  }, async (req: { body: { n: number } }) => ({ n: req.body.n + 1, dropped: 'by the serializer' }));
  await typed.ready();
  const bad = await typed.inject({ method: 'POST', url: '/typed', payload: { n: 'x' } });
  assert.equal(bad.statusCode, 400);
  const good = await typed.inject({ method: 'POST', url: '/typed', payload: { n: 1 } });
  assert.deepEqual(good.json(), { n: 2 });
  assert.equal(loaded('@fastify/ajv-compiler'), true);
  assert.equal(loaded('@fastify/fast-json-stringify-compiler'), true);
  await typed.close();
});

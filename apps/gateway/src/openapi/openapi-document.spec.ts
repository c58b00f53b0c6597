import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CATALOGUE } from '@muse/contracts';
import { controllerRoutes } from '../controller-routes.js';
import { API_ROUTES, COMPONENT_SCHEMAS } from './api-routes.js';
import { buildOpenApiDocument } from './openapi-document.js';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string; required: boolean }>; requestBody?: { content: Record<string, unknown> }; responses: Record<string, { content?: Record<string, { schema?: { $ref?: string }; examples?: Record<string, unknown> }> }> }>>;
  components: { schemas: Record<string, Record<string, unknown>> };
};
const doc = buildOpenApiDocument() as unknown as Doc;

test('the route table and the Nest controllers list the same routes', () => {
  const table = API_ROUTES.filter((r) => !r.websocket && !r.serviceKit).map((r) => `${r.method.toUpperCase()} ${r.path}`).sort();
  assert.deepEqual(table, controllerRoutes().map((r) => r.route).sort());
});

test('the document covers every route of the brief, the stream and the health endpoints', () => {
  const expected = [
    'POST /v1/workflows',
    'GET /v1/workflows',
    'GET /v1/workflows/{name}',
    'GET /v1/workflows/{name}/versions/{version}',
    'POST /v1/runs',
    'GET /v1/runs',
    'GET /v1/runs/{id}',
    'GET /v1/runs/{id}/events',
    'POST /v1/runs/{id}/cancel',
    'POST /v1/runs/{id}/approvals/{stepId}',
    'POST /v1/runs/{id}/pause',
    'POST /v1/runs/{id}/resume',
    'POST /v1/runs/{id}/retry',
    'GET /v1/dead-letters',
    'POST /v1/runs/{id}/rerun',
    'POST /v1/runs/{id}/replay',
    'POST /v1/runs/{id}/budget',
    'GET /v1/runs/{id}/artifacts',
    'GET /v1/artifacts/{id}',
    'GET /v1/artifacts/{id}/content',
    'GET /v1/artifacts/{id}/lineage',
    'GET /v1/agents',
    'GET /v1/pools',
    'GET /v1/stream',
    'GET /v1/agents/connect',
    'POST /mcp',
    'GET /mcp',
    'DELETE /mcp',
    'GET /docs',
    'GET /docs/openapi.json',
    'GET /health/live',
    'GET /health/ready',
    'GET /metrics',
    'POST /v1/projects',
    'GET /v1/projects',
    'POST /v1/api-keys',
    'GET /v1/api-keys',
    'DELETE /v1/api-keys/{id}',
    'GET /v1/audit',
    'POST /v1/profiling/sessions',
    'GET /v1/profiling/sessions/{id}',
    'DELETE /v1/profiling/sessions/{id}',
    'POST /v1/schedules',
    'GET /v1/schedules',
    'GET /v1/schedules/{id}',
    'DELETE /v1/schedules/{id}',
    'GET /v1/leases',
  ];
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  assert.deepEqual(documented.sort(), expected.sort());
  assert.equal(doc.openapi, '3.1.0');
});

test('every $ref resolves to a component, and every component came from a contracts schema', () => {
  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
  assert.ok(refs.length > 20);
  for (const ref of refs) {
    const id = ref.slice('"$ref":"#/components/schemas/'.length, -1);
    assert.ok(doc.components.schemas[id], `${ref} does not resolve`);
  }
  assert.deepEqual(Object.keys(doc.components.schemas).sort(), COMPONENT_SCHEMAS.map(([id]) => id).sort());
  for (const schema of Object.values(doc.components.schemas)) {
    assert.equal(schema.$id, undefined);
    assert.equal(schema.$schema, undefined);
  }
});

test('bodies accept JSON and YAML; body routes document 400/413/415 with the envelope', () => {
  const post = doc.paths['/v1/workflows']!.post!;
  assert.deepEqual(Object.keys(post.requestBody!.content).sort(), ['application/json', 'application/x-yaml', 'application/yaml', 'text/yaml']);
  for (const status of ['201', '200', '400', '413', '415', '500']) assert.ok(post.responses[status], `missing ${status}`);
  const bad = post.responses['400']!.content!['application/json']!;
  assert.equal(bad.schema!.$ref, '#/components/schemas/ErrorEnvelope');
  assert.ok(bad.examples!.MUSE_ERR_WORKFLOW_INVALID);
  assert.ok(bad.examples!.MUSE_ERR_REQUEST_MALFORMED_YAML);
});

test('each route documents its catalogue errors under their catalogue status', () => {
  for (const route of API_ROUTES) {
    const op = doc.paths[route.path]![route.method]!;
    for (const code of route.errors) {
      const status = String(ERROR_CATALOGUE[code].status);
      assert.ok(op.responses[status]?.content?.['application/json']?.examples?.[code], `${route.operationId}: ${code} under ${status}`);
    }
  }
  const submit = doc.paths['/v1/runs']!.post!;
  assert.ok(submit.responses['202'] && submit.responses['409'] && submit.responses['404'] && submit.responses['503']);
  assert.deepEqual(submit.parameters!.map((p) => [p.name, p.in]), [['Idempotency-Key', 'header'], ['traceparent', 'header']]);
});

test('list parameters come from RunListQuerySchema; path parameters are required', () => {
  const list = doc.paths['/v1/runs']!.get!;
  assert.deepEqual(list.parameters!.map((p) => [p.name, p.in, p.required]), [
    ['status', 'query', false],
    ['workflow', 'query', false],
    ['limit', 'query', false],
    ['cursor', 'query', false],
  ]);
  const get = doc.paths['/v1/runs/{id}']!.get!;
  assert.deepEqual(get.parameters!.map((p) => [p.name, p.in, p.required]), [['id', 'path', true]]);
});

test('a route whose schema is not a component, or whose path parameter is undescribed, fails the build', () => {
  const [first] = API_ROUTES;
  assert.throws(() => buildOpenApiDocument([{ ...first!, path: '/v1/x/{y}' }]), /path parameter \{y\}/);
  assert.throws(() => buildOpenApiDocument([{ ...first!, body: { schema: ERROR_CATALOGUE as never, required: true } }]), /not in COMPONENT_SCHEMAS/);
});

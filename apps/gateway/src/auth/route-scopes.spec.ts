/** Deny by default, checked: every route the gateway registers declares a scope (or is public), and the OpenAPI table says the same. */
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controllerRoutes } from '../controller-routes.js';
import { API_ROUTES } from '../openapi/api-routes.js';
import { PUBLIC_METADATA, SCOPE_METADATA } from './scope.decorator.js';

function routeScopes(): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const { route, controller, handler } of controllerRoutes()) {
    const isPublic = (Reflect.getMetadata(PUBLIC_METADATA, handler) ?? Reflect.getMetadata(PUBLIC_METADATA, controller)) === true;
    const scope = (Reflect.getMetadata(SCOPE_METADATA, handler) ?? Reflect.getMetadata(SCOPE_METADATA, controller)) as string | undefined;
    out.set(route, isPublic ? 'public' : scope);
  }
  return out;
}

test('every registered route declares a scope or is public', () => {
  const scopes = routeScopes();
  assert.ok(scopes.size >= 20, `only ${scopes.size} routes found`);
  const undeclared = [...scopes].filter(([, s]) => s === undefined).map(([r]) => r);
  assert.deepEqual(undeclared, [], 'routes without @RequireScope or @Public');
});

test('only the documentation is public among the controllers; mutations need write or admin', () => {
  const scopes = routeScopes();
  assert.deepEqual([...scopes].filter(([, s]) => s === 'public').map(([r]) => r).sort(), ['GET /docs', 'GET /docs/openapi.json']);
  for (const [route, scope] of scopes) {
    // `/mcp` carries MCP messages, reads included: it needs `read`, and each tool the scope of the REST route it calls.
    if (route === 'POST /mcp' || route === 'DELETE /mcp') {
      assert.equal(scope, 'read', route);
      continue;
    }
    if (!route.startsWith('GET ')) assert.ok(scope === 'write' || scope === 'admin', `${route} is a mutation with scope ${scope}`);
  }
});

test('the OpenAPI route table states the same scope as the controllers', () => {
  const scopes = routeScopes();
  for (const r of API_ROUTES.filter((x) => !x.websocket && !x.serviceKit)) {
    assert.equal(r.scope, scopes.get(`${r.method.toUpperCase()} ${r.path}`), `${r.method} ${r.path}`);
  }
  for (const r of API_ROUTES.filter((x) => x.serviceKit)) assert.equal(r.scope, 'public', r.path);
});

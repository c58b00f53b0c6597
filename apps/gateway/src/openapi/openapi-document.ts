/**
 * The OpenAPI 3.1 document, generated from the route table and the
 * contracts' zod schemas (`z.toJSONSchema`, JSON Schema 2020-12, which is
 * OpenAPI 3.1's dialect). Nothing here restates a schema by hand.
 */
import { z } from 'zod';
import { ERROR_CATALOGUE, type MuseErrorCode } from '@muse/contracts';
import { BODY_MEDIA_TYPES } from '../http/body.parser.js';
import { API_ROUTES, COMPONENT_SCHEMAS, type ApiRoute } from './api-routes.js';

type Json = Record<string, unknown>;

/** Errors of every route that needs a credential. */
const AUTH_ERRORS: MuseErrorCode[] = ['MUSE_ERR_AUTH_REQUIRED', 'MUSE_ERR_AUTH_FORBIDDEN', 'MUSE_ERR_PROJECT_NOT_FOUND', 'MUSE_ERR_PROJECT_REQUIRED', 'MUSE_ERR_RATE_LIMITED'];
/** Errors any route can answer. */
const COMMON_ERRORS: MuseErrorCode[] = ['MUSE_ERR_INTERNAL'];
/** Errors of every route that reads a body. */
const BODY_ERRORS: MuseErrorCode[] = [
  'MUSE_ERR_REQUEST_INVALID',
  'MUSE_ERR_REQUEST_MALFORMED_JSON',
  'MUSE_ERR_REQUEST_MALFORMED_YAML',
  'MUSE_ERR_REQUEST_MEDIA_TYPE',
  'MUSE_ERR_REQUEST_TOO_LARGE',
];

const refOf = (id: string): Json => ({ $ref: `#/components/schemas/${id}` });

export interface OpenApiOptions {
  /** Largest body, in bytes, stated in the description. */
  maxBodyBytes?: number;
  version?: string;
}

export function buildOpenApiDocument(routes: readonly ApiRoute[] = API_ROUTES, opts: OpenApiOptions = {}): Json {
  const ids = new Map<z.ZodType, string>(COMPONENT_SCHEMAS.map(([id, schema]) => [schema, id]));
  const schemaRef = (schema: z.ZodType, where: string): Json => {
    const id = ids.get(schema);
    if (!id) throw new Error(`${where}: schema is not in COMPONENT_SCHEMAS`);
    return refOf(id);
  };

  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    const where = `${route.method.toUpperCase()} ${route.path}`;
    const op: Json = {
      operationId: route.operationId,
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
    };
    const parameters = [
      ...Object.entries(route.pathParams ?? {}).map(([name, p]) => ({ name, in: 'path', required: true, description: p.description, schema: inline(p.schema) })),
      ...Object.entries(route.query?.shape ?? {}).map(([name, schema]) => ({
        name,
        in: 'query',
        required: !(schema as z.ZodType).safeParse(undefined).success,
        schema: inline(schema as z.ZodType),
      })),
      ...Object.entries(route.headers ?? {}).map(([name, p]) => ({ name, in: 'header', required: p.required ?? false, description: p.description, schema: inline(p.schema) })),
    ];
    const templated = [...route.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const name of templated) {
      if (!route.pathParams?.[name!]) throw new Error(`${where}: path parameter {${name}} is not described`);
    }
    if (parameters.length > 0) op.parameters = parameters;
    if (route.body) {
      const schema = schemaRef(route.body.schema, where);
      op.requestBody = {
        required: route.body.required,
        ...(route.body.description ? { description: route.body.description } : {}),
        content: Object.fromEntries(BODY_MEDIA_TYPES.map((t) => [t, { schema }])),
      };
    }
    const responses: Record<string, Json> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      const res: Json = { description: r.description };
      if (r.schema) res.content = { 'application/json': { schema: schemaRef(r.schema, where) } };
      else if (r.json) res.content = { 'application/json': { schema: { type: 'object' } } };
      else if (r.binary) res.content = { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } };
      if (r.headers) res.headers = Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }]));
      responses[status] = res;
    }
    const open = route.scope === 'public';
    const codes = [...new Set([...route.errors, ...(route.body ? BODY_ERRORS : []), ...(open ? [] : AUTH_ERRORS), ...COMMON_ERRORS])];
    // Deny by default: a route of the table without a scope is documented as needing admin, never as open.
    op.security = open ? [] : [{ apiKey: [] }, { jwt: [] }];
    op['x-muse-scope'] = route.scope ?? 'admin';
    for (const [status, group] of groupByStatus(codes)) {
      if (responses[status]) throw new Error(`${where}: status ${status} is both a success and an error`);
      responses[status] = errorResponse(group);
    }
    op.responses = responses;
    if (route.websocket) op['x-websocket'] = { clientMessage: refOf(route.messages?.client ?? 'StreamClientMessage'), serverMessage: refOf(route.messages?.server ?? 'StreamServerMessage') };
    paths[route.path] ??= {};
    if (paths[route.path]![route.method]) throw new Error(`${where} is listed twice`);
    paths[route.path]![route.method] = op;
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Muse API',
      version: opts.version ?? '1',
      description:
        'Run DAG workflows of AI agents. Every error is `{"error": {"code", "message", "retryable", "details"}}` with a stable `MUSE_ERR_*` code.' +
        (opts.maxBodyBytes !== undefined ? ` Request bodies are limited to ${opts.maxBodyBytes} bytes.` : ''),
    },
    tags: [...new Set(routes.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'muse_<key id>_<secret>',
          description:
            'An API key: `Authorization: Bearer muse_...`. Scopes: `read`, `write` (includes read), `admin` (includes write), `agent`. `Muse-Project: <name>` picks the project when the key has several; a project the key lacks answers 404 like one that does not exist.',
        },
        jwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A JWT verified against the configured JWKS; its claims give projects and scopes.' },
      },
    },
  };
}

function componentSchemas(): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of COMPONENT_SCHEMAS) registry.add(schema, { id });
  // `io: 'input'`: what a client may send (defaults make fields optional); the
  // response schemas have no defaults or transforms, so they read the same.
  const out = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, io: 'input', unrepresentable: 'any' });
  const schemas: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(out.schemas)) {
    // Inside an OpenAPI document a component needs neither; a fragment-only $id is not even valid 2020-12.
    const { $schema: _s, $id: _i, ...rest } = schema as Json;
    schemas[id] = rest;
  }
  return schemas;
}

function inline(schema: z.ZodType): Json {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
}

function groupByStatus(codes: MuseErrorCode[]): Map<number, MuseErrorCode[]> {
  const out = new Map<number, MuseErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_CATALOGUE[code].status;
    out.set(status, [...(out.get(status) ?? []), code]);
  }
  return new Map([...out.entries()].sort(([a], [b]) => a - b));
}

function errorResponse(codes: MuseErrorCode[]): Json {
  return {
    description: codes.map((c) => `\`${c}\`: ${ERROR_CATALOGUE[c].message}`).join('; '),
    content: {
      'application/json': {
        schema: refOf('ErrorEnvelope'),
        examples: Object.fromEntries(
          codes.map((code) => [code, { value: { error: { code, message: ERROR_CATALOGUE[code].message, retryable: ERROR_CATALOGUE[code].retryable } } }]),
        ),
      },
    },
  };
}

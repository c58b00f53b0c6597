/**
 * Every route the gateway serves, as data: the OpenAPI document is generated
 * from this table and the contracts' zod schemas, and a unit test checks that
 * the table and the Nest controllers list the same routes.
 */
import { z } from 'zod';
import {
  AgentListSchema,
  AgentViewSchema,
  ArtifactListSchema,
  ArtifactMetaSchema,
  CancelRunBodySchema,
  ErrorBodySchema,
  ErrorEnvelopeSchema,
  RunAcceptedSchema,
  RunEventListSchema,
  RunEventSchema,
  RunListQuerySchema,
  RunListSchema,
  RunViewSchema,
  StepViewSchema,
  StreamClientMessageSchema,
  StreamServerMessageSchema,
  SubmitRunBodySchema,
  WORKFLOW_NAME_PATTERN,
  WorkflowDefinitionSchema,
  WorkflowListSchema,
  WorkflowRegisteredSchema,
  WorkflowVersionViewSchema,
  WorkflowViewSchema,
  type MuseErrorCode,
} from '@muse/contracts';
import { RUN_ID_PATTERN } from '../runs/run-id.js';

/** Named schemas, emitted once under `components.schemas` and referenced by `$ref`. */
export const COMPONENT_SCHEMAS: ReadonlyArray<readonly [string, z.ZodType]> = [
  ['ErrorEnvelope', ErrorEnvelopeSchema],
  ['ErrorBody', ErrorBodySchema],
  ['WorkflowDefinition', WorkflowDefinitionSchema],
  ['WorkflowRegistered', WorkflowRegisteredSchema],
  ['WorkflowList', WorkflowListSchema],
  ['WorkflowView', WorkflowViewSchema],
  ['WorkflowVersionView', WorkflowVersionViewSchema],
  ['SubmitRunBody', SubmitRunBodySchema],
  ['RunAccepted', RunAcceptedSchema],
  ['CancelRunBody', CancelRunBodySchema],
  ['RunView', RunViewSchema],
  ['StepView', StepViewSchema],
  ['RunList', RunListSchema],
  ['RunEvent', RunEventSchema],
  ['RunEventList', RunEventListSchema],
  ['ArtifactMeta', ArtifactMetaSchema],
  ['ArtifactList', ArtifactListSchema],
  ['AgentView', AgentViewSchema],
  ['AgentList', AgentListSchema],
  ['StreamClientMessage', StreamClientMessageSchema],
  ['StreamServerMessage', StreamServerMessageSchema],
];

export interface ApiParam {
  description: string;
  schema: z.ZodType;
}

export interface ApiResponse {
  description: string;
  /** JSON body; must be one of COMPONENT_SCHEMAS (or any JSON object when omitted with `json: true`). */
  schema?: z.ZodType;
  json?: boolean;
  /** Raw bytes of any media type (artifact content). */
  binary?: boolean;
  headers?: Record<string, string>;
}

export interface ApiRoute {
  method: 'get' | 'post';
  /** OpenAPI path template (`{id}`), the same as the Nest route (`:id`). */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  pathParams?: Record<string, ApiParam>;
  query?: z.ZodObject;
  headers?: Record<string, ApiParam & { required?: boolean }>;
  body?: { schema: z.ZodType; required: boolean; description?: string };
  responses: Record<number, ApiResponse>;
  /** Route-specific error codes; body, size and internal errors are added for every route that needs them. */
  errors: MuseErrorCode[];
  /** Served by the WebSocket upgrade, not by Nest. */
  websocket?: boolean;
  /** Served by the shared service kit (health, metrics), not by a gateway controller. */
  serviceKit?: boolean;
}

const workflowName: ApiParam = { description: 'Workflow name', schema: z.string().regex(WORKFLOW_NAME_PATTERN) };
const runId: ApiParam = { description: 'Run id (`run_` + 26 characters)', schema: z.string().regex(RUN_ID_PATTERN) };
const artifactId: ApiParam = { description: 'Artifact id', schema: z.string().min(1) };

export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'post',
    path: '/v1/workflows',
    operationId: 'registerWorkflow',
    tag: 'workflows',
    summary: 'Register a workflow version',
    description:
      'The body is a workflow definition, as JSON or YAML. Versions count up from 1 per name; content identical to the latest version returns that version with 200 instead of creating one.',
    body: { schema: WorkflowDefinitionSchema, required: true },
    responses: {
      201: { description: 'A new version was registered', schema: WorkflowRegisteredSchema, headers: { Location: 'The version\'s URL' } },
      200: { description: 'Identical to the latest version, which is returned', schema: WorkflowRegisteredSchema, headers: { Location: 'The version\'s URL' } },
    },
    errors: ['MUSE_ERR_WORKFLOW_INVALID'],
  },
  {
    method: 'get',
    path: '/v1/workflows',
    operationId: 'listWorkflows',
    tag: 'workflows',
    summary: 'List workflows of the project',
    responses: { 200: { description: 'Workflows by name', schema: WorkflowListSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/v1/workflows/{name}',
    operationId: 'getWorkflow',
    tag: 'workflows',
    summary: 'A workflow: its latest version in full and every version\'s digest',
    pathParams: { name: workflowName },
    responses: { 200: { description: 'The workflow', schema: WorkflowViewSchema } },
    errors: ['MUSE_ERR_WORKFLOW_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/v1/workflows/{name}/versions/{version}',
    operationId: 'getWorkflowVersion',
    tag: 'workflows',
    summary: 'One version of a workflow',
    pathParams: { name: workflowName, version: { description: 'Version, from 1', schema: z.int().min(1) } },
    responses: { 200: { description: 'The version', schema: WorkflowVersionViewSchema } },
    errors: ['MUSE_ERR_WORKFLOW_NOT_FOUND', 'MUSE_ERR_REQUEST_INVALID'],
  },
  {
    method: 'post',
    path: '/v1/runs',
    operationId: 'submitRun',
    tag: 'runs',
    summary: 'Submit a run',
    description:
      'Runs a registered workflow (`workflow`, optional `version`, default latest) or an inline `definition` (registered like POST /v1/workflows). The run is pinned to that version. 202 is sent once JetStream stored the submission. With `Idempotency-Key`, the same key and body return the same run; the same key with another body is 409.',
    headers: {
      'Idempotency-Key': { description: 'Makes retries safe: remembered per project for 24 h', schema: z.string().min(1).max(255) },
      traceparent: { description: 'W3C trace context carried into the run', schema: z.string() },
    },
    body: { schema: SubmitRunBodySchema, required: true },
    responses: { 202: { description: 'Accepted', schema: RunAcceptedSchema, headers: { Location: 'The run\'s URL' } } },
    errors: [
      'MUSE_ERR_WORKFLOW_INVALID',
      'MUSE_ERR_WORKFLOW_NOT_FOUND',
      'MUSE_ERR_RUN_INPUT_INVALID',
      'MUSE_ERR_IDEMPOTENCY_CONFLICT',
      'MUSE_ERR_UNAVAILABLE',
    ],
  },
  {
    method: 'get',
    path: '/v1/runs',
    operationId: 'listRuns',
    tag: 'runs',
    summary: 'List runs of the project, newest first',
    description:
      'Pages with an opaque `cursor` (from `nextCursor`). With a filter, a page may hold fewer than `limit` runs and still have a `nextCursor`: the gateway bounds the work of one request.',
    query: RunListQuerySchema,
    responses: { 200: { description: 'A page of runs (without steps, input or output)', schema: RunListSchema } },
    errors: ['MUSE_ERR_REQUEST_INVALID'],
  },
  {
    method: 'get',
    path: '/v1/runs/{id}',
    operationId: 'getRun',
    tag: 'runs',
    summary: 'A run and its steps',
    pathParams: { id: runId },
    responses: { 200: { description: 'The run', schema: RunViewSchema } },
    errors: ['MUSE_ERR_RUN_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/v1/runs/{id}/events',
    operationId: 'listRunEvents',
    tag: 'runs',
    summary: 'The run\'s event log, in order',
    pathParams: { id: runId },
    responses: { 200: { description: 'Every event so far, by `seq`', schema: RunEventListSchema } },
    errors: ['MUSE_ERR_RUN_NOT_FOUND', 'MUSE_ERR_UNAVAILABLE'],
  },
  {
    method: 'post',
    path: '/v1/runs/{id}/cancel',
    operationId: 'cancelRun',
    tag: 'runs',
    summary: 'Ask for a run to be cancelled',
    description: 'Cancellation is asynchronous: the answer carries the status the run has now; watch its events for `run.cancelled`.',
    pathParams: { id: runId },
    body: { schema: CancelRunBodySchema, required: false },
    responses: { 202: { description: 'The cancellation was accepted', schema: RunAcceptedSchema } },
    errors: ['MUSE_ERR_RUN_NOT_FOUND', 'MUSE_ERR_RUN_TERMINAL', 'MUSE_ERR_UNAVAILABLE'],
  },
  {
    method: 'get',
    path: '/v1/runs/{id}/artifacts',
    operationId: 'listRunArtifacts',
    tag: 'artifacts',
    summary: 'Artifacts a run produced, oldest first',
    pathParams: { id: runId },
    responses: { 200: { description: 'Artifact metadata', schema: ArtifactListSchema } },
    errors: ['MUSE_ERR_RUN_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/v1/artifacts/{id}',
    operationId: 'getArtifact',
    tag: 'artifacts',
    summary: 'Artifact metadata',
    pathParams: { id: artifactId },
    responses: { 200: { description: 'The artifact', schema: ArtifactMetaSchema } },
    errors: ['MUSE_ERR_ARTIFACT_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/v1/artifacts/{id}/content',
    operationId: 'getArtifactContent',
    tag: 'artifacts',
    summary: 'Artifact bytes, streamed from the artifact store',
    description: 'Status, Content-Type, Content-Length and Content-Range come from the artifact store; a `Range` header is passed on.',
    pathParams: { id: artifactId },
    headers: { Range: { description: 'Byte range, e.g. `bytes=0-1023`', schema: z.string() } },
    responses: {
      200: { description: 'The whole content', binary: true },
      206: { description: 'The requested range', binary: true },
      304: { description: 'Not modified (conditional request)' },
      416: { description: 'The range cannot be satisfied' },
    },
    errors: ['MUSE_ERR_ARTIFACT_NOT_FOUND', 'MUSE_ERR_UNAVAILABLE'],
  },
  {
    method: 'get',
    path: '/v1/agents',
    operationId: 'listAgents',
    tag: 'agents',
    summary: 'Agent workers seen recently, with their load',
    responses: { 200: { description: 'Live agents', schema: AgentListSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/v1/stream',
    operationId: 'stream',
    tag: 'stream',
    summary: 'WebSocket: live run events',
    description:
      'Upgrade to a WebSocket. Send `StreamClientMessage`s: `{"op":"subscribe","runId":"<id>","fromSeq":1}` (one run: its whole log or from `fromSeq`, in order, then live, without gaps or duplicates; `runId: "*"`: new events of every run), `{"op":"unsubscribe","runId":"<id>"}`, `{"op":"ping"}`. Receive `StreamServerMessage`s: `subscribed`, `event`, `pong`, `error`. A bad message gets an `error` and the connection stays open; frames larger than the body limit close it (1009).',
    websocket: true,
    responses: { 101: { description: 'Switching to the WebSocket protocol' } },
    errors: ['MUSE_ERR_ROUTE_NOT_FOUND'],
  },
  {
    method: 'get',
    path: '/docs',
    operationId: 'openapi',
    tag: 'docs',
    summary: 'This OpenAPI 3.1 document',
    responses: { 200: { description: 'OpenAPI document', json: true } },
    errors: [],
  },
  {
    method: 'get',
    path: '/docs/openapi.json',
    operationId: 'openapiJson',
    tag: 'docs',
    summary: 'This OpenAPI 3.1 document (same as /docs)',
    responses: { 200: { description: 'OpenAPI document', json: true } },
    errors: [],
  },
  {
    method: 'get',
    path: '/health/live',
    operationId: 'live',
    tag: 'operations',
    summary: 'Liveness',
    serviceKit: true,
    responses: { 200: { description: 'The process is up', json: true } },
    errors: [],
  },
  {
    method: 'get',
    path: '/health/ready',
    operationId: 'ready',
    tag: 'operations',
    summary: 'Readiness: NATS and Redis reachable, not draining',
    serviceKit: true,
    responses: { 200: { description: 'Ready, with each check', json: true } },
    errors: ['MUSE_ERR_UNAVAILABLE'],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    serviceKit: true,
    responses: { 200: { description: 'Prometheus text format' } },
    errors: [],
  },
];

/**
 * The Muse MCP server, one per client session, on any transport (stdio for
 * `muse mcp`, Streamable HTTP at the gateway's `/mcp`). Every tool and
 * resource goes through `api`, a REST client holding the caller's own
 * credential, so an MCP client can do exactly what its key can do over REST.
 *
 * Tools are served by our own `tools/list` and `tools/call` handlers rather
 * than `McpServer.registerTool`: the SDK answers arguments that fail the
 * input schema with a plain-text error, and Muse answers them like the REST
 * API does, `{error: {code: "MUSE_ERR_REQUEST_INVALID", details: {issues}}}`.
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Variables } from '@modelcontextprotocol/sdk/shared/uriTemplate.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { MuseError, zodIssues, type ArtifactMeta, type RunView } from '@muse/contracts';
import type { MuseApiClient } from './muse-api.client.js';
import { ARTIFACT_URI_PREFIX, RUN_URI_PREFIX, ResourceSubscriptions, resourceError } from './resource-subscriptions.js';
import { errorBodyOf, toolError, toolOk } from './tool-result.js';
import { decodeContent, MUSE_TOOLS, type MuseTool } from './tools.js';

export interface MuseMcpServerOptions {
  /** The gateway, called with the client's credential. */
  api: MuseApiClient;
  /** Reported as `serverInfo.version`. */
  version: string;
}

/** Resources listed by `resources/list`: the newest runs. */
const LISTED_RUNS = 50;
/** `muse://artifacts/{id}` reads at most this much; `read_artifact` pages through larger ones. @default 16 MiB */
const MAX_RESOURCE_BYTES = 16 * 1024 * 1024;
/** Pause between a tool's last progress notification and its result, in ms (see the CallTool handler). */
const PROGRESS_SETTLE_MS = 20;

const INSTRUCTIONS = [
  'Muse runs workflows (DAGs of agent and shell steps) durably. Typical use: list_workflows / describe_workflow,',
  'submit_run (with an idempotencyKey when you may retry), wait_for_run (progress notifications as steps finish;',
  'it returns when the run finishes or waits for an approval), get_run, list_run_artifacts / read_artifact,',
  'decide_approval for a waiting gate, cancel_run / retry_run / rerun_run. Errors are {error: {code, message, retryable, details}}',
  'with stable MUSE_ERR_* codes. Runs and artifacts are also resources (muse://runs/{id}, muse://artifacts/{id}) you can subscribe to.',
].join(' ');

/** A tool's input schema as MCP lists it: JSON Schema of what a client may send (defaults make fields optional). */
export function toolInputJsonSchema(t: MuseTool): Tool['inputSchema'] {
  const { $schema: _drop, ...schema } = z.toJSONSchema(t.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return schema as Tool['inputSchema'];
}

export function createMuseMcpServer(opts: MuseMcpServerOptions): McpServer {
  const { api } = opts;
  const mcp = new McpServer(
    { name: 'muse', title: 'Muse', version: opts.version },
    { capabilities: { tools: { listChanged: false }, resources: { subscribe: true, listChanged: false } }, instructions: INSTRUCTIONS },
  );
  const server = mcp.server;

  const byName = new Map(MUSE_TOOLS.map((t) => [t.name, t]));
  const listed: Tool[] = MUSE_TOOLS.map((t) => ({ name: t.name, title: t.title, description: t.description, inputSchema: toolInputJsonSchema(t), annotations: { title: t.title, ...t.annotations } }));
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const t = byName.get(req.params.name);
    if (!t) throw new McpError(ErrorCode.InvalidParams, `Tool ${req.params.name} not found`);
    const args = req.params.arguments ?? {};
    const parsed = t.input.safeParse(args);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error, args);
      const first = issues[0];
      return toolError(new MuseError('MUSE_ERR_REQUEST_INVALID', `Invalid arguments for ${t.name}: ${first?.path ? `${first.path}: ` : ''}${first?.message ?? ''}`, { details: { issues } }).toWire());
    }
    const token = extra._meta?.progressToken;
    let notified = false;
    const progress =
      token === undefined
        ? undefined
        : // Best effort: a notification that cannot be delivered does not end the call.
          (p: { progress: number; total: number; message: string }) => {
            notified = true;
            return extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, ...p } }).catch(() => undefined);
          };
    try {
      const res = await t.run(parsed.data as Record<string, unknown>, { api, signal: extra.signal, ...(progress ? { progress } : {}) });
      // The SDK's client dispatches notifications a microtask late but responses at once, and a response retires its
      // progress token: a final notification read in the same chunk as the result is dropped (typescript-sdk#2580).
      // A short pause sends the two in separate writes, so the client sees the last progress before the result.
      if (notified) await new Promise((r) => setTimeout(r, PROGRESS_SETTLE_MS));
      return toolOk(res.structured, res.text);
    } catch (err) {
      return toolError(errorBodyOf(err));
    }
  });

  const idOf = (v: Variables): string => String(Array.isArray(v.id) ? v.id[0] : v.id);
  mcp.registerResource(
    'run',
    new ResourceTemplate(`${RUN_URI_PREFIX}{id}`, {
      list: async () => {
        const runs = await api.request<{ items: Array<Pick<RunView, 'id' | 'status' | 'workflow' | 'updatedAt'>> }>('GET', '/v1/runs', { query: { limit: LISTED_RUNS } });
        return {
          resources: runs.items.map((r) => ({ uri: `${RUN_URI_PREFIX}${r.id}`, name: r.id, title: `${r.workflow.name} v${r.workflow.version}: ${r.status}`, mimeType: 'application/json' })),
        };
      },
    }),
    { title: 'Run', description: "A run's view (status, steps, output) as JSON; subscribe to be told of each change.", mimeType: 'application/json' },
    async (uri, vars) => {
      try {
        const run = await api.request<RunView>('GET', `/v1/runs/${encodeURIComponent(idOf(vars))}`);
        return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(run) }] };
      } catch (err) {
        throw resourceError(err, uri.href);
      }
    },
  );
  mcp.registerResource(
    'artifact',
    new ResourceTemplate(`${ARTIFACT_URI_PREFIX}{id}`, { list: undefined }),
    { title: 'Artifact', description: 'An artifact\'s content (text, or base64 `blob` for binary media types); its metadata is in `_meta`.' },
    async (uri, vars) => {
      try {
        const artifactId = idOf(vars);
        const meta = await api.request<ArtifactMeta>('GET', `/v1/artifacts/${encodeURIComponent(artifactId)}`);
        if (meta.size > MAX_RESOURCE_BYTES) {
          throw new McpError(ErrorCode.InvalidRequest, `${uri.href} is ${meta.size} bytes, over ${MAX_RESOURCE_BYTES}: page through it with the read_artifact tool`, { uri: uri.href });
        }
        const body = meta.size === 0 ? { bytes: new Uint8Array() } : await api.artifactContent(artifactId);
        const decoded = decodeContent(body.bytes, meta.mediaType);
        const content = decoded.encoding === 'utf8' ? { text: decoded.content } : { blob: decoded.content };
        return { contents: [{ uri: uri.href, mimeType: meta.mediaType, ...content, _meta: { artifact: meta } }] };
      } catch (err) {
        throw resourceError(err, uri.href);
      }
    },
  );

  const subscriptions = new ResourceSubscriptions(api, (uri) => server.sendResourceUpdated({ uri }));
  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    await subscriptions.subscribe(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, (req) => {
    subscriptions.unsubscribe(req.params.uri);
    return {};
  });
  // registerResource announces `listChanged`; neither list changes at run time (tools are fixed, resources are runs: subscribe to them).
  server.registerCapabilities({ tools: { listChanged: false }, resources: { subscribe: true, listChanged: false } });
  const previous = server.onclose;
  server.onclose = () => {
    subscriptions.close();
    previous?.();
  };
  return mcp;
}

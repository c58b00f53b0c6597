/**
 * `muse mcp`: the Muse MCP server over stdio, for an agent on this machine
 * (an MCP client starts it as a subprocess). It speaks JSON-RPC on stdin and
 * stdout, so everything it says for people goes to stderr; each tool calls
 * the gateway with the CLI's API key, so it can do what that key can do.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMuseMcpServer, MUSE_MCP_VERSION, MuseApiClient } from '@muse/mcp';

export interface McpCommandOptions {
  gateway: string;
  apiKey: string | undefined;
  /** `Muse-Project` for a key with several projects. */
  project?: string;
}

/** Serves until the client closes stdin; resolves with the exit code. */
export async function serveMcpOverStdio(o: McpCommandOptions): Promise<number> {
  if (!o.apiKey) {
    process.stderr.write('muse mcp: no API key: pass --api-key, set MUSE_API_KEY, or run `muse up` (which writes $MUSE_HOME/api-key)\n');
    return 1;
  }
  const apiKey = o.apiKey;
  const api = new MuseApiClient(o.gateway, () => ({ token: apiKey, ...(o.project ? { project: o.project } : {}) }));
  const server = createMuseMcpServer({ api, version: MUSE_MCP_VERSION });
  const closed = new Promise<void>((resolve) => {
    const previous = server.server.onclose;
    server.server.onclose = () => {
      previous?.();
      resolve();
    };
  });
  // The client ending the conversation closes stdin; the transport itself does not watch for that.
  process.stdin.once('end', () => void server.close());
  await server.connect(new StdioServerTransport());
  process.stderr.write(`muse mcp: serving the gateway at ${o.gateway} over stdio${o.project ? ` (project ${o.project})` : ''}\n`);
  await closed;
  return 0;
}

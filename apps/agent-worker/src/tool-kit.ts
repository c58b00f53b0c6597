/** Builds the worker's tools once at start, from its configuration (MUSE_HTTP_*). */
import { HostAllowlist, parsePorts } from './address-policy.js';
import { AgentToolRunner } from './agent-tools.js';
import { HttpStepExecutor } from './http-step.executor.js';
import { HttpTool } from './http-tool.js';
import type { ShellStepExecutor } from './shell-step.executor.js';
import { ToolLoop } from './tool-loop.js';
/** The worker's tools from its configuration: the http tool, the http step executor, and the function-calling loop. */
export function createToolKit(
  config: { MUSE_HTTP_ALLOW_HOSTS: string; MUSE_HTTP_ALLOW_LOOPBACK_PORTS: string; MUSE_HTTP_TIMEOUT_MS: number; MUSE_HTTP_MAX_RESPONSE_BYTES: number },
  shell: Pick<ShellStepExecutor, 'run'>,
  scrubber?: { scrubDeep<T>(value: T): T },
): { http: HttpTool; httpSteps: HttpStepExecutor; loop: ToolLoop; allowlist: HostAllowlist; loopbackPorts: Set<number> } {
  const allowlist = HostAllowlist.parse(config.MUSE_HTTP_ALLOW_HOSTS);
  const loopbackPorts = parsePorts(config.MUSE_HTTP_ALLOW_LOOPBACK_PORTS);
  const http = new HttpTool({
    allowlist,
    ...(loopbackPorts.size > 0 ? { allowLoopbackPorts: loopbackPorts } : {}),
    timeoutMs: config.MUSE_HTTP_TIMEOUT_MS,
    maxResponseBytes: config.MUSE_HTTP_MAX_RESPONSE_BYTES,
  });
  return { http, httpSteps: new HttpStepExecutor(http), loop: new ToolLoop(new AgentToolRunner({ http, shell }), scrubber), allowlist, loopbackPorts };
}

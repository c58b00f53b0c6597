/**
 * `/mcp`: the Muse MCP server over Streamable HTTP (POST a JSON-RPC message,
 * GET the session's server-to-client SSE stream, DELETE the session).
 *
 * The route needs only a valid credential with `read`: what a session may do
 * beyond reading is decided per tool by the REST route the tool calls, with
 * the same credential (a `read` key's `submit_run` answers the REST 403).
 * That is why POST here is `read` although it is not a GET.
 */
import { Controller, Delete, Get, Inject, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { McpSessions } from './mcp-sessions.service.js';

@Controller('mcp')
@RequireScope('read')
export class McpController {
  constructor(@Inject(McpSessions) private readonly sessions: McpSessions) {}

  @Post()
  post(@CurrentCaller() caller: Caller, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.sessions.handle(req, reply, caller);
  }

  @Get()
  stream(@CurrentCaller() caller: Caller, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.sessions.handle(req, reply, caller);
  }

  @Delete()
  end(@CurrentCaller() caller: Caller, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.sessions.handle(req, reply, caller);
  }
}

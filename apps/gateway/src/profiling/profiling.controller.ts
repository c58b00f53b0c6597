import { Body, Controller, Delete, Get, Inject, Param, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ALL_PROJECTS, MuseError, StartProfilingBodySchema, type ProfileReport, type ProfilingSession } from '@muse/contracts';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { parseRequest } from '../common/parse-request.js';
import { ProfilingService } from './profiling.service.js';

/**
 * `POST /v1/profiling/sessions` starts a session in every process of the
 * cluster; `DELETE /v1/profiling/sessions/{id}` stops it and answers the
 * report. Profiles cover every project's work, so only an all-projects admin may.
 */
@Controller('v1/profiling/sessions')
@RequireScope('admin')
export class ProfilingController {
  constructor(@Inject(ProfilingService) private readonly profiling: ProfilingService) {}

  @Post()
  async start(@CurrentCaller() caller: Caller, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<ProfilingSession> {
    allProjects(caller);
    const session = await this.profiling.start(parseRequest(StartProfilingBodySchema, body ?? {}, 'profiling session'));
    reply.status(201).header('Location', `/v1/profiling/sessions/${session.id}`);
    return session;
  }

  @Get(':id')
  get(@CurrentCaller() caller: Caller, @Param('id') id: string): ProfilingSession {
    allProjects(caller);
    return this.profiling.get(id);
  }

  @Delete(':id')
  stop(@CurrentCaller() caller: Caller, @Param('id') id: string): Promise<ProfileReport> {
    allProjects(caller);
    return this.profiling.stop(id);
  }
}

function allProjects(caller: Caller): void {
  if (caller.projects !== ALL_PROJECTS) throw new MuseError('MUSE_ERR_AUTH_FORBIDDEN', 'Only a credential for every project ("*") profiles the cluster');
}

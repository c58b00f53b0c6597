import { Body, Controller, Get, Inject, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ALL_PROJECTS, CreateProjectBodySchema, MuseError, type ProjectView } from '@muse/contracts';
import { CurrentCaller } from '../caller/caller.guard.js';
import { coversProject, type Caller } from '../caller/caller.js';
import { parseRequest } from '../common/parse-request.js';
import { ApiKeyStore } from './api-key-store.service.js';
import { RequireScope } from './scope.decorator.js';

@Controller('v1/projects')
export class ProjectsController {
  constructor(@Inject(ApiKeyStore) private readonly store: ApiKeyStore) {}

  /** Only an all-projects admin (the bootstrap key, or a key it made with `["*"]`) creates projects. */
  @Post()
  @RequireScope('admin')
  async create(@CurrentCaller() caller: Caller, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): Promise<ProjectView> {
    const req = parseRequest(CreateProjectBodySchema, body, 'project');
    if (caller.projects !== ALL_PROJECTS) throw new MuseError('MUSE_ERR_AUTH_FORBIDDEN', 'Only a credential for every project ("*") creates projects');
    const project: ProjectView = { name: req.name, createdAt: new Date().toISOString(), createdBy: caller.principal, ...(req.description !== undefined ? { description: req.description } : {}) };
    if (!(await this.store.createProject(project))) throw new MuseError('MUSE_ERR_PROJECT_EXISTS', `Project "${req.name}" exists`, { details: { project: req.name } });
    reply.status(201);
    return project;
  }

  /** The projects the caller may use. */
  @Get()
  @RequireScope('read')
  async list(@CurrentCaller() caller: Caller) {
    return { items: (await this.store.listProjects()).filter((p) => coversProject(caller, p.name)) };
  }
}

import { Body, Controller, Get, Inject, Param, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { MuseError, type StoredWorkflow } from '@muse/contracts';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { requireValidWorkflow } from './workflow-definition.js';
import { WorkflowRegistry, notFound } from './workflow-registry.service.js';

@Controller('v1/workflows')
export class WorkflowsController {
  constructor(@Inject(WorkflowRegistry) private readonly registry: WorkflowRegistry) {}

  /** 201 for a new version; 200 with the latest version when the content is identical to it. */
  @Post()
  @RequireScope('write')
  async register(@CurrentCaller() caller: Caller, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const definition = requireValidWorkflow(body);
    const res = await this.registry.register(caller.project, definition);
    reply.status(res.created ? 201 : 200).header('location', `/v1/workflows/${res.name}/versions/${res.version}`);
    return { name: res.name, version: res.version };
  }

  @Get()
  @RequireScope('read')
  async list(@CurrentCaller() caller: Caller) {
    return { items: await this.registry.list(caller.project) };
  }

  @Get(':name')
  @RequireScope('read')
  async get(@CurrentCaller() caller: Caller, @Param('name') name: string) {
    const history = await this.registry.history(caller.project, name);
    if (!history) throw notFound(name);
    return { name: history.name, latest: versionView(history.latest), versions: history.versions };
  }

  @Get(':name/versions/:version')
  @RequireScope('read')
  async getVersion(@CurrentCaller() caller: Caller, @Param('name') name: string, @Param('version') versionParam: string) {
    const version = parseVersionParam(versionParam);
    const found = await this.registry.getVersion(caller.project, name, version);
    if (!found) throw notFound(name, version);
    return versionView(found);
  }
}

function versionView(w: StoredWorkflow) {
  return { name: w.name, version: w.version, digest: w.digest, createdAt: w.createdAt, definition: w.definition };
}

/** A version in a path is a positive integer; anything else is a bad request, not a missing version. */
export function parseVersionParam(raw: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(raw)) {
    throw new MuseError('MUSE_ERR_REQUEST_INVALID', `version must be a positive integer, got "${raw}"`, {
      details: { issues: [{ path: 'version', field: 'version', message: 'expected a positive integer' }] },
    });
  }
  return Number(raw);
}

import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ALL_PROJECTS, AuditQuerySchema, MuseError } from '@muse/contracts';
import { CurrentCaller } from '../caller/caller.guard.js';
import { coversProject, type Caller } from '../caller/caller.js';
import { parseRequest } from '../common/parse-request.js';
import { AuditLog } from './audit-log.service.js';
import { RequireScope } from './scope.decorator.js';

@Controller('v1/audit')
export class AuditController {
  constructor(@Inject(AuditLog) private readonly audit: AuditLog) {}

  /**
   * The newest audit records of the caller's projects (or of `project`),
   * oldest first. Records without a project (refused before naming one) are
   * shown only to an all-projects admin.
   */
  @Get()
  @RequireScope('admin')
  async list(@CurrentCaller() caller: Caller, @Query() query: unknown) {
    const q = parseRequest(AuditQuerySchema, { ...(query as object) }, 'query');
    if (q.project !== undefined && !coversProject(caller, q.project)) {
      throw new MuseError('MUSE_ERR_PROJECT_NOT_FOUND', `No project "${q.project}"`, { details: { project: q.project } });
    }
    const projects = q.project !== undefined ? [q.project] : caller.projects === ALL_PROJECTS ? ALL_PROJECTS : caller.projects;
    return { items: await this.audit.read(projects, q.limit) };
  }
}

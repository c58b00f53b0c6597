import { Body, Controller, Delete, Get, Inject, Param, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ALL_PROJECTS, CreateApiKeyBodySchema, MuseError, type StoredApiKey } from '@muse/contracts';
import { CurrentCaller } from '../caller/caller.guard.js';
import { coversProject, hasScope, type Caller } from '../caller/caller.js';
import { parseRequest } from '../common/parse-request.js';
import { apiKeyView, generateApiKey, hashApiKey } from './api-key.js';
import { ApiKeyStore } from './api-key-store.service.js';
import { RequireScope } from './scope.decorator.js';

/** A key is visible to (and revocable by) an admin whose credential covers every project of the key. */
function visibleTo(caller: Caller, key: StoredApiKey): boolean {
  if (caller.projects === ALL_PROJECTS) return true;
  return !key.projects.includes(ALL_PROJECTS) && key.projects.every((p) => coversProject(caller, p));
}

@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(@Inject(ApiKeyStore) private readonly store: ApiKeyStore) {}

  /** 201 with the key itself: the only time it is shown. A caller grants no project or scope it lacks. */
  @Post()
  @RequireScope('admin')
  async create(@CurrentCaller() caller: Caller, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const req = parseRequest(CreateApiKeyBodySchema, body, 'API key');
    for (const project of req.projects) {
      if (project === ALL_PROJECTS) {
        if (caller.projects !== ALL_PROJECTS) throw new MuseError('MUSE_ERR_AUTH_FORBIDDEN', 'Only a credential for every project grants "*"');
        continue;
      }
      // A project the caller may not use answers like one that does not exist.
      if (!coversProject(caller, project) || !(await this.store.projectExists(project))) {
        throw new MuseError('MUSE_ERR_PROJECT_NOT_FOUND', `No project "${project}"`, { details: { project } });
      }
    }
    const missing = req.scopes.filter((s) => !hasScope(caller.scopes, s));
    if (missing.length > 0) throw new MuseError('MUSE_ERR_AUTH_FORBIDDEN', `A key cannot grant scopes its creator lacks: ${missing.join(', ')}`, { details: { missing } });
    if (req.expiresAt !== undefined && Date.parse(req.expiresAt) <= Date.now()) {
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'expiresAt is in the past', { details: { issues: [{ path: 'expiresAt', field: 'expiresAt', message: 'must be in the future' }] } });
    }
    const { id, key } = generateApiKey();
    const stored: StoredApiKey = {
      id,
      name: req.name,
      projects: [...new Set(req.projects)],
      scopes: [...new Set(req.scopes)],
      hash: hashApiKey(key),
      createdAt: new Date().toISOString(),
      createdBy: caller.principal,
      ...(req.expiresAt !== undefined ? { expiresAt: new Date(req.expiresAt).toISOString() } : {}),
    };
    // 48 random bits of id: a collision is a retry, not an overwrite.
    if (!(await this.store.create(stored))) throw new MuseError('MUSE_ERR_UNAVAILABLE', 'Key id collision; retry');
    reply.status(201).header('location', `/v1/api-keys/${id}`);
    return { ...apiKeyView(stored), key };
  }

  @Get()
  @RequireScope('admin')
  async list(@CurrentCaller() caller: Caller) {
    return { items: (await this.store.list()).filter((k) => visibleTo(caller, k)).map(apiKeyView) };
  }

  /** Revokes at once (the next request with the key gets 401); the record stays, with `revokedAt`. */
  @Delete(':id')
  @RequireScope('admin')
  async revoke(@CurrentCaller() caller: Caller, @Param('id') id: string) {
    const key = await this.store.get(id).catch(() => null);
    if (!key || !visibleTo(caller, key)) throw new MuseError('MUSE_ERR_API_KEY_NOT_FOUND', `No API key "${id}"`);
    return apiKeyView((await this.store.revoke(id, new Date().toISOString()))!);
  }
}

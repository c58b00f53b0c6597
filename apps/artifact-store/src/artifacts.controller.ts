/** `GET /v1/artifacts/{id}`, `.../content` and `.../lineage`: adapters over the repository, the content and the lineage services. */
import { Controller, Get, Inject, Param, Req, Res } from '@nestjs/common';
import { MuseError, type ArtifactLineage, type ArtifactMeta } from '@muse/contracts';
import { LOGGER, type Logger } from '@muse/telemetry';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ArtifactRepository } from '@muse/artifacts';
import type { ArtifactContentService } from './artifact-content.service.js';
import type { ArtifactLineageService } from './artifact-lineage.service.js';
import { ARTIFACT_CONTENT, ARTIFACT_LINEAGE, ARTIFACT_REPOSITORY } from './artifact-store.tokens.js';
import { sendFile } from './file-sender.js';

@Controller('v1/artifacts')
export class ArtifactsController {
  constructor(
    @Inject(ARTIFACT_REPOSITORY) private readonly repo: Pick<ArtifactRepository, 'get'>,
    @Inject(ARTIFACT_CONTENT) private readonly content: ArtifactContentService,
    @Inject(ARTIFACT_LINEAGE) private readonly lineageOf: Pick<ArtifactLineageService, 'lineage' | 'withConsumers'>,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Get(':id')
  async meta(@Param('id') id: string): Promise<ArtifactMeta> {
    return this.lineageOf.withConsumers(await this.find(id));
  }

  @Get(':id/lineage')
  async lineage(@Param('id') id: string): Promise<ArtifactLineage> {
    return this.lineageOf.lineage(await this.find(id));
  }

  @Get(':id/content')
  async download(@Param('id') id: string, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const meta = await this.find(id);
    const { plan, stream, file } = await this.content.open(meta, {
      range: header(req, 'range'),
      ifRange: header(req, 'if-range'),
      ifNoneMatch: header(req, 'if-none-match'),
    });
    reply.code(plan.status).headers(plan.headers);
    if (file) {
      // A local file: sent through buffers of our own (file-sender.ts), past Fastify's reply.
      reply.hijack();
      const res = reply.raw;
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
      res.writeHead(plan.status);
      if (req.method === 'HEAD') {
        await file.handle.close();
        res.end();
        return;
      }
      // A digest mismatch found mid-stream destroys the response before its
      // last bytes: the client sees a short body, never a corrupt one.
      await sendFile(res, file).catch((err: unknown) => this.logger.error({ err, artifactId: id, digest: meta.digest }, 'artifact content stream failed'));
      return;
    }
    // Likewise for a stream (the NATS and S3 backends verify as they stream).
    stream?.once('error', (err) => this.logger.error({ err, artifactId: id, digest: meta.digest }, 'artifact content stream failed'));
    await reply.send(stream ?? '');
  }

  private async find(id: string): Promise<ArtifactMeta> {
    const meta = await this.repo.get(id);
    if (!meta) throw new MuseError('MUSE_ERR_ARTIFACT_NOT_FOUND', `no artifact ${id}`);
    return meta;
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

import { Controller, Get, Inject } from '@nestjs/common';
import type { GatewayConfig } from '@muse/contracts';
import { Public } from '../auth/scope.decorator.js';
import { GATEWAY_CONFIG } from '../gateway.tokens.js';
import { buildOpenApiDocument } from './openapi-document.js';

/** Open to all: the API's description is no secret (and clients need it before they hold a key). */
@Controller('docs')
@Public()
export class OpenApiController {
  private readonly document: Record<string, unknown>;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    // Built once at boot: a route table that does not convert fails the start, not a request.
    this.document = buildOpenApiDocument(undefined, { maxBodyBytes: config.MUSE_MAX_BODY_BYTES });
  }

  @Get()
  index() {
    return this.document;
  }

  @Get('openapi.json')
  json() {
    return this.document;
  }
}

import { Controller, Get, Header, Inject } from '@nestjs/common';
import type { GatewayConfig } from '@muse/contracts';
import { Public } from '../auth/scope.decorator.js';
import { GATEWAY_CONFIG } from '../gateway.tokens.js';
import { buildOpenApiDocument } from './openapi-document.js';

/** Open to all: the API's description is no secret (and clients need it before they hold a key). */
@Controller('docs')
@Public()
export class OpenApiController {
  /** The document as JSON text: ~200 kB kept instead of ~0.9 MB of objects, and serialized once. */
  private readonly document: string;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    // Built once at boot: a route table that does not convert fails the start, not a request.
    this.document = JSON.stringify(buildOpenApiDocument(undefined, { maxBodyBytes: config.MUSE_MAX_BODY_BYTES }));
  }

  @Get()
  @Header('content-type', 'application/json; charset=utf-8')
  index() {
    return this.document;
  }

  @Get('openapi.json')
  @Header('content-type', 'application/json; charset=utf-8')
  json() {
    return this.document;
  }
}

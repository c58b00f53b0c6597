/**
 * The endpoints every service serves: `/health/live`, `/health/ready` and
 * `/metrics`. Apps import `ServiceKitModule.forRoot(...)` once.
 */
import { Controller, Get, Header, HttpException, Inject, Module, type DynamicModule } from '@nestjs/common';
import type { Logger } from 'pino';
import { MuseMetrics } from './metrics.js';
import { Readiness } from './health.js';

export const LOGGER = Symbol('muse.logger');

@Controller()
class ServiceKitController {
  constructor(
    @Inject(MuseMetrics) private readonly metrics: MuseMetrics,
    @Inject(Readiness) private readonly readiness: Readiness,
  ) {}

  @Get('health/live')
  live(): { ok: true } {
    return { ok: true };
  }

  @Get('health/ready')
  async ready(): Promise<{ ok: boolean; checks: Record<string, string> }> {
    const res = await this.readiness.run();
    if (!res.ok) throw new HttpException(res, 503);
    return res;
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metricsText(): Promise<string> {
    return this.metrics.render();
  }
}

@Module({})
export class ServiceKitModule {
  static forRoot(opts: { metrics: MuseMetrics; readiness: Readiness; logger: Logger }): DynamicModule {
    return {
      module: ServiceKitModule,
      global: true,
      controllers: [ServiceKitController],
      providers: [
        { provide: MuseMetrics, useValue: opts.metrics },
        { provide: Readiness, useValue: opts.readiness },
        { provide: LOGGER, useValue: opts.logger },
      ],
      exports: [MuseMetrics, Readiness, LOGGER],
    };
  }
}

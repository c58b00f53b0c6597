import { Controller, Get, Header, Inject } from '@nestjs/common';
import type { PoolList } from './pools.schema.js';
import { ScalerService } from './scaler.service.js';

@Controller('v1')
export class PoolsController {
  constructor(@Inject(ScalerService) private readonly scaler: ScalerService) {}

  /** Every pool's policy bounds, desired and actual size, queue, and last decision. */
  @Get('pools')
  @Header('Cache-Control', 'no-store')
  pools(): PoolList {
    return this.scaler.list();
  }
}

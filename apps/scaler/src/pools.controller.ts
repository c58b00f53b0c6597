import { Controller, Get, Header, Inject } from '@nestjs/common';
import type { PoolList } from './pools.schema.js';
import { ScalerService } from './scaler.service.js';

@Controller('v1')
export class PoolsController {
  constructor(@Inject(ScalerService) private readonly scaler: ScalerService) {}

  /** Every pool's policy, desired and actual size, queue, and last decisions, as the leader replica last wrote them. */
  @Get('pools')
  @Header('Cache-Control', 'no-store')
  pools(): Promise<PoolList> {
    return this.scaler.board();
  }
}

import { Controller, Get, Header, Inject } from '@nestjs/common';
import { LiveViewService } from './live-view.service.js';
import type { Snapshot } from './snapshot.schema.js';

@Controller('v1')
export class SnapshotController {
  constructor(@Inject(LiveViewService) private readonly live: LiveViewService) {}

  /** The live state as JSON; the dashboard polls it every second. */
  @Get('snapshot')
  @Header('Cache-Control', 'no-store')
  snapshot(): Snapshot {
    return this.live.snapshot();
  }
}

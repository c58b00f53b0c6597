import { Module, type DynamicModule } from '@nestjs/common';
import { DashboardController } from './dashboard.controller.js';
import { LIVE_SOURCES, type LiveSources } from './live-sources.js';
import { LiveStreamGateway } from './live-stream.gateway.js';
import { LIVE_VIEW_OPTIONS, LiveViewService, type LiveViewOptions } from './live-view.service.js';
import { SnapshotController } from './snapshot.controller.js';

/** Connections are opened by `main.ts` (so shutdown can close them in order) and handed in here. */
@Module({})
export class ObservabilityModule {
  static forRoot(deps: { sources: LiveSources; options: LiveViewOptions }): DynamicModule {
    return {
      module: ObservabilityModule,
      controllers: [SnapshotController, DashboardController],
      providers: [
        { provide: LIVE_SOURCES, useValue: deps.sources },
        { provide: LIVE_VIEW_OPTIONS, useValue: deps.options },
        LiveViewService,
        LiveStreamGateway,
      ],
    };
  }
}

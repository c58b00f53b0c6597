import { Module, type DynamicModule } from '@nestjs/common';
import { PoolsController } from './pools.controller.js';
import { SCALER_SOURCES, type ScalerSources } from './scaler-sources.js';
import { SCALER_OPTIONS, SCALER_RUNTIME, ScalerService, type ScalerOptions, type ScalerRuntime } from './scaler.service.js';

/** Connections are opened by `main.ts` (so shutdown can close them in order) and handed in here. */
@Module({})
export class ScalerModule {
  static forRoot(deps: { sources: ScalerSources; options: ScalerOptions; runtime: ScalerRuntime }): DynamicModule {
    return {
      module: ScalerModule,
      controllers: [PoolsController],
      providers: [
        { provide: SCALER_SOURCES, useValue: deps.sources },
        { provide: SCALER_OPTIONS, useValue: deps.options },
        { provide: SCALER_RUNTIME, useValue: deps.runtime },
        ScalerService,
      ],
    };
  }
}

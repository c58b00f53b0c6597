import { Controller, Get, Module } from '@nestjs/common';
import { ScalerConfigSchema } from '@muse/contracts';
import { runService } from '@muse/telemetry';

@Controller()
class PingController {
  @Get('ping') ping() { return { pong: true }; }
}
@Module({ controllers: [PingController] })
class M {}

await runService({ service: 'scaler', configSchema: ScalerConfigSchema, port: (c) => c.SCALER_PORT, setup: async () => M });

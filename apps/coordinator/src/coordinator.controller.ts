import { Controller, Get, Inject } from '@nestjs/common';
import { CommandHandler } from './command.handler.js';

@Controller('v1/coordinator')
export class CoordinatorController {
  constructor(@Inject(CommandHandler) private readonly handler: CommandHandler) {}

  @Get()
  stats(): { pid: number; cachedRuns: number } {
    return { pid: process.pid, cachedRuns: this.handler.cachedRuns };
  }
}

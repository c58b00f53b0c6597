import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import type { Schedule } from '@muse/contracts';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { SchedulesService } from './schedules.service.js';

/** Cron schedules of the caller's project: each firing starts a run of its workflow. */
@Controller('v1/schedules')
export class SchedulesController {
  constructor(@Inject(SchedulesService) private readonly schedules: SchedulesService) {}

  @Post()
  @HttpCode(201)
  @RequireScope('write')
  create(@CurrentCaller() caller: Caller, @Body() body: unknown): Promise<Schedule> {
    return this.schedules.create(caller, body);
  }

  @Get()
  @RequireScope('read')
  async list(@CurrentCaller() caller: Caller): Promise<{ items: Schedule[] }> {
    return { items: await this.schedules.list(caller) };
  }

  @Get(':id')
  @RequireScope('read')
  get(@CurrentCaller() caller: Caller, @Param('id') id: string): Promise<Schedule> {
    return this.schedules.get(caller, id);
  }

  @Delete(':id')
  @RequireScope('write')
  remove(@CurrentCaller() caller: Caller, @Param('id') id: string): Promise<{ id: string; deleted: true }> {
    return this.schedules.remove(caller, id);
  }
}

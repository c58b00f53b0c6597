import { Controller, Get, Inject } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { LeaseList, MuseNames } from '@muse/contracts';
// The lease table alone: the package root also loads the run locks and redis-semaphore, which the gateway never takes.
import { LeaseTable } from '@muse/locks/lease-table';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { NAMES, REDIS } from '../gateway.tokens.js';

/** Leases of the caller's project (steps' `locks:`): who holds what, and who waits for what, in order. */
@Controller('v1/leases')
export class LeasesController {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
  ) {}

  @Get()
  @RequireScope('read')
  list(@CurrentCaller() caller: Caller): Promise<LeaseList> {
    return LeaseTable.list(this.redis, this.names, caller.project);
  }
}

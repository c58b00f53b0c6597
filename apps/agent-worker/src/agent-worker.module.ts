/**
 * The agent worker's Nest module. The worker's work arrives over BullMQ, not
 * HTTP, so its HTTP surface is only what the service kit serves
 * (`/health/*`, `/metrics`); this module is where routes would go.
 */
import { Module } from '@nestjs/common';

@Module({})
export class AgentWorkerModule {}

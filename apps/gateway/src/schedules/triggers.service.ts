/**
 * Event triggers: a workflow that declares `on: { subject }` starts a run for each message published on
 * `<namespace>.trigger.<project>.<subject>` (core NATS, a queue group: one gateway replica takes each message).
 * The message (a JSON object) is the run's input. A `Nats-Msg-Id` or `Idempotency-Key` header makes a re-sent
 * message start the same run; a request (rather than a plain publish) is answered with the runs it started, once
 * JetStream stored them, so a publisher that needs to know can wait for that.
 */
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { decodeJson, type IncomingMessage, type JetStreamBus } from '@muse/messaging';
import { MuseError, type MuseNames } from '@muse/contracts';
import { LOGGER, type Logger } from '@muse/telemetry';
import type { Caller } from '../caller/caller.js';
import { BUS, NAMES, REDIS } from '../gateway.tokens.js';
import { RunsService } from '../runs/runs.service.js';
import { WorkflowRegistry, triggerSetKey } from '../workflows/workflow-registry.service.js';

export interface TriggerReply {
  runs: Array<{ workflow: string; id: string }>;
  errors: Array<{ workflow?: string; code: string; message: string }>;
}

@Injectable()
export class TriggersService implements OnModuleInit {
  constructor(
    @Inject(BUS) private readonly bus: JetStreamBus,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    @Inject(RunsService) private readonly runs: RunsService,
    @Inject(WorkflowRegistry) private readonly registry: WorkflowRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    this.bus.subscribeQueue(this.names.triggerSubjectWildcard, `${this.names.namespace}.triggers`, (m) => this.onMessage(m));
  }

  private async onMessage(m: IncomingMessage): Promise<void> {
    const reply: TriggerReply = { runs: [], errors: [] };
    try {
      const prefix = `${this.names.namespace}.trigger.`;
      const rest = m.subject.slice(prefix.length);
      const dot = rest.indexOf('.');
      if (dot <= 0) throw new MuseError('MUSE_ERR_REQUEST_INVALID', `"${m.subject}" names no project and subject`);
      const project = rest.slice(0, dot);
      const subject = rest.slice(dot + 1);
      const input = parseInput(m.data);
      const names = await this.redis.smembers(triggerSetKey(this.names, project, subject));
      const caller: Caller = { principal: `trigger:${subject}`, projects: [project], scopes: ['write'], project };
      const msgId = m.header('Nats-Msg-Id') ?? m.header('Idempotency-Key');
      for (const name of names.sort()) {
        try {
          // The latest version decides: one that no longer declares this subject does not start.
          const wf = await this.registry.resolve(project, name);
          if (wf.definition.on?.subject !== subject) continue;
          const accepted = await this.runs.submit(caller, { body: { workflow: name, input }, ...(msgId ? { idempotencyKey: `trigger.${name}.${msgId}` } : {}) });
          reply.runs.push({ workflow: name, id: accepted.id });
        } catch (err) {
          const e = asMuseError(err);
          reply.errors.push({ workflow: name, code: e.code, message: e.message });
        }
      }
      this.logger.info({ subject: m.subject, runs: reply.runs.length, errors: reply.errors.length }, 'trigger message');
    } catch (err) {
      const e = asMuseError(err);
      reply.errors.push({ code: e.code, message: e.message });
      this.logger.warn({ err, subject: m.subject }, 'trigger message refused');
    }
    m.respond(reply);
  }
}

function parseInput(data: Uint8Array): Record<string, unknown> {
  if (data.length === 0) return {};
  let value: unknown;
  try {
    value = decodeJson(data);
  } catch {
    throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'A trigger message must be a JSON object (it becomes the run input)');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MuseError('MUSE_ERR_REQUEST_INVALID', 'A trigger message must be a JSON object (it becomes the run input)');
  return value as Record<string, unknown>;
}

function asMuseError(err: unknown): MuseError {
  return err instanceof MuseError ? err : new MuseError('MUSE_ERR_INTERNAL', err instanceof Error ? err.message : String(err));
}

/**
 * Cron schedules (`POST /v1/schedules`): each is a BullMQ job scheduler (durable in Redis, one firing per tick
 * however many gateways run) whose jobs a worker on every gateway replica takes; a firing submits a run like
 * `POST /v1/runs` would, under an idempotency key of the schedule and tick, so a firing retried after a crash
 * starts one run. The schedule itself (workflow, input, who made it) is a Redis hash entry per project.
 */
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Queue, Worker, type Job } from '@muse/queues';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { CreateScheduleBodySchema, MuseError, ScheduleSchema, zodIssues, type MuseNames, type Schedule } from '@muse/contracts';
import { LOGGER, type Logger } from '@muse/telemetry';
import type { Caller } from '../caller/caller.js';
import { NAMES, REDIS } from '../gateway.tokens.js';
import { RunsService } from '../runs/runs.service.js';
import { WorkflowRegistry } from '../workflows/workflow-registry.service.js';
import { checkRunInput } from '../runs/submit-run.js';

interface FireJob {
  project: string;
  scheduleId: string;
}

const SCHEDULE_ID = /^sch_[0-9a-f]{16}$/;

@Injectable()
export class SchedulesService implements OnModuleInit, OnModuleDestroy {
  private readonly queue: Queue<FireJob>;
  private worker?: Worker<FireJob>;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    @Inject(RunsService) private readonly runs: RunsService,
    @Inject(WorkflowRegistry) private readonly registry: WorkflowRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.queue = new Queue<FireJob>(names.scheduleQueue, { connection: redis.duplicate({ enableAutoPipelining: false }), prefix: names.bullPrefix });
  }

  onModuleInit(): void {
    this.worker = new Worker<FireJob>(this.names.scheduleQueue, (job) => this.fire(job), {
      connection: this.redis.duplicate({ maxRetriesPerRequest: null }),
      prefix: this.names.bullPrefix,
      concurrency: 4,
    });
    this.worker.on('failed', (job, err) => this.logger.warn({ err, scheduleId: job?.data.scheduleId }, 'schedule firing failed'));
  }

  async onModuleDestroy(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }

  async create(caller: Caller, raw: unknown): Promise<Schedule> {
    const parsed = CreateScheduleBodySchema.safeParse(raw);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error, raw);
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', `The schedule is invalid: ${issues[0]?.path ? `${issues[0].path}: ` : ''}${issues[0]?.message ?? ''}`, { details: { issues } });
    }
    const body = parsed.data;
    if (!isTimeZone(body.timezone)) throw invalid('timezone', `"${body.timezone}" is not an IANA time zone`);
    // The workflow must exist now, and the input must fit it (a later version may still change that: a firing then fails).
    const wf = await this.registry.resolve(caller.project, body.workflow, body.version);
    checkRunInput(wf.definition, body.input);
    const schedule: Schedule = {
      id: `sch_${randomBytes(8).toString('hex')}`,
      project: caller.project,
      workflow: body.workflow,
      ...(body.version !== undefined ? { version: body.version } : {}),
      cron: body.cron,
      timezone: body.timezone,
      input: body.input,
      ...(body.priority !== undefined ? { priority: body.priority } : {}),
      createdAt: new Date().toISOString(),
      createdBy: caller.principal,
    };
    try {
      await this.queue.upsertJobScheduler(schedulerId(schedule), { pattern: body.cron, tz: body.timezone }, { name: 'fire', data: { project: caller.project, scheduleId: schedule.id } });
    } catch (err) {
      throw invalid('cron', `"${body.cron}" is not a cron pattern: ${(err as Error).message}`);
    }
    await this.redis.hset(this.names.schedulesKey(caller.project), schedule.id, JSON.stringify(schedule));
    return { ...schedule, ...(await this.next(schedule)) };
  }

  async list(caller: Caller): Promise<Schedule[]> {
    const all = await this.redis.hvals(this.names.schedulesKey(caller.project));
    const items = all.map((raw) => ScheduleSchema.parse(JSON.parse(raw)));
    items.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return Promise.all(items.map(async (s) => ({ ...s, ...(await this.next(s)) })));
  }

  async get(caller: Caller, id: string): Promise<Schedule> {
    const s = await this.load(caller.project, id);
    if (!s) throw notFound(id);
    return { ...s, ...(await this.next(s)) };
  }

  async remove(caller: Caller, id: string): Promise<{ id: string; deleted: true }> {
    const s = await this.load(caller.project, id);
    if (!s) throw notFound(id);
    await this.queue.removeJobScheduler(schedulerId(s));
    await this.redis.hdel(this.names.schedulesKey(caller.project), id);
    return { id, deleted: true };
  }

  /** One tick: the run it starts, keyed by the schedule and the tick's time (a retried firing starts the same run). */
  private async fire(job: Job<FireJob>): Promise<string | undefined> {
    const s = await this.load(job.data.project, job.data.scheduleId);
    if (!s) return undefined; // deleted between the tick and now
    const caller: Caller = { principal: `schedule:${s.id}`, projects: [s.project], scopes: ['write'], project: s.project };
    const body = { workflow: s.workflow, ...(s.version !== undefined ? { version: s.version } : {}), input: s.input, ...(s.priority !== undefined ? { priority: s.priority } : {}) };
    const tick = job.opts.timestamp ?? job.timestamp;
    const accepted = await this.runs.submit(caller, { body, idempotencyKey: `schedule.${s.id}.${job.id ?? tick}` });
    this.logger.info({ scheduleId: s.id, runId: accepted.id }, 'schedule fired');
    return accepted.id;
  }

  private async load(project: string, id: string): Promise<Schedule | null> {
    if (!SCHEDULE_ID.test(id)) return null;
    const raw = await this.redis.hget(this.names.schedulesKey(project), id);
    return raw === null ? null : ScheduleSchema.parse(JSON.parse(raw));
  }

  private async next(s: Schedule): Promise<{ nextRunAt?: string }> {
    const js = await this.queue.getJobScheduler(schedulerId(s));
    return js?.next ? { nextRunAt: new Date(js.next).toISOString() } : {};
  }
}

/** BullMQ's id of a schedule's job scheduler (its ids may not hold `:`). */
function schedulerId(s: Pick<Schedule, 'project' | 'id'>): string {
  return `${s.project}.${s.id}`;
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function invalid(field: string, message: string): MuseError {
  return new MuseError('MUSE_ERR_REQUEST_INVALID', `The schedule is invalid: ${field}: ${message}`, { details: { issues: [{ path: field, field, message }] } });
}

function notFound(id: string): MuseError {
  return new MuseError('MUSE_ERR_SCHEDULE_NOT_FOUND', `No schedule "${id}"`, { details: { id } });
}

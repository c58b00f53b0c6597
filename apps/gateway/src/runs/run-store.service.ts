/**
 * The run read model in Redis, as the gateway sees it: `runKey(id)` holds the
 * RunView JSON (the coordinator overwrites it as events fold), the project's
 * `runIndexKey` is a sorted set of run ids by createdAt (epoch ms), and
 * `idempotencyKey(project, key)` remembers keyed submissions.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RunViewSchema, type MuseNames, type RunStatus, type RunView } from '@muse/contracts';
import { evalCached } from '@muse/queues/redis';
import { LOGGER, type Logger } from '@muse/telemetry';
import { NAMES, REDIS } from '../gateway.tokens.js';
import { IDEMPOTENCY_TTL_SECONDS, IdempotencyRecordSchema, type IdempotencyRecord } from './idempotency.js';
import { encodeCursor, isAfterCursor, type RunCursor } from './run-cursor.js';
import { isRunId } from './run-id.js';

export type RunSummary = Omit<RunView, 'steps' | 'input' | 'output'>;

export interface RunListFilter {
  status?: RunStatus;
  workflow?: string;
  limit: number;
  cursor?: RunCursor;
}

/**
 * The first view (unless the coordinator wrote one already) and its index entry, atomically. A script rather than
 * MULTI/EXEC: one command, which joins the other requests' commands in one write on the auto-pipelined connection.
 */
const WRITE_INITIAL = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[3])
return 1
`;

/** Index entries read per Redis round trip while listing. */
const LIST_BATCH = 200;
/**
 * Index entries one list request may look at. With a filter that matches
 * rarely, a page can come back short with a `nextCursor`: the client keeps
 * paging instead of the gateway scanning a whole project in one request.
 */
const LIST_MAX_SCAN = 2_000;

@Injectable()
export class RunStore {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(NAMES) private readonly names: MuseNames,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** The run's view, or null when it does not exist or belongs to another project. */
  async find(project: string, runId: string): Promise<RunView | null> {
    if (!isRunId(runId)) return null;
    const raw = await this.redis.get(this.names.runKey(runId));
    if (raw === null) return null;
    // The project is compared before the full parse: another project's run costs about what a missing one does (tenancy: same timing class).
    const json = JSON.parse(raw) as { project?: unknown };
    if (json.project !== project) return null;
    return RunViewSchema.parse(json);
  }

  async exists(runId: string): Promise<boolean> {
    return (await this.redis.exists(this.names.runKey(runId))) === 1;
  }

  /** Writes the first view of a run unless one is there already, and indexes it. */
  async writeInitial(view: RunView): Promise<void> {
    await evalCached(this.redis, WRITE_INITIAL, [this.names.runKey(view.id), this.names.runIndexKey(view.project)], [JSON.stringify(view), Date.parse(view.createdAt), view.id]);
  }

  async list(project: string, filter: RunListFilter): Promise<{ items: RunSummary[]; nextCursor?: string }> {
    const key = this.names.runIndexKey(project);
    const items: RunSummary[] = [];
    let position = filter.cursor;
    let scanned = 0;
    let exhausted = false;
    while (items.length < filter.limit && scanned < LIST_MAX_SCAN) {
      const entries = await this.indexPage(key, position, Math.min(LIST_BATCH, LIST_MAX_SCAN - scanned));
      if (entries.length === 0) {
        exhausted = true;
        break;
      }
      const raws = await this.redis.mget(...entries.map((e) => this.names.runKey(e.runId)));
      let consumed = 0;
      for (let i = 0; i < entries.length && items.length < filter.limit; i++) {
        consumed++;
        position = entries[i]!;
        const view = this.parseView(raws[i] ?? null, entries[i]!.runId);
        if (!view || view.project !== project) continue;
        if (filter.status !== undefined && view.status !== filter.status) continue;
        if (filter.workflow !== undefined && view.workflow.name !== filter.workflow) continue;
        items.push(summary(view));
      }
      scanned += consumed;
      if (consumed === entries.length && entries.length < LIST_BATCH) {
        exhausted = true;
        break;
      }
    }
    return exhausted || !position ? { items } : { items, nextCursor: encodeCursor(position) };
  }

  /**
   * Up to `count` index entries after `cursor`, newest first. Entries that
   * share the cursor's score sort by id descending; those at or before the
   * cursor are skipped with an exact offset, so any number of ties pages right.
   */
  private async indexPage(key: string, cursor: RunCursor | undefined, count: number): Promise<RunCursor[]> {
    let offset = 0;
    if (cursor) {
      const ties = await this.redis.zrange(key, cursor.score, cursor.score, 'BYSCORE');
      offset = ties.filter((id) => id >= cursor.runId).length;
    }
    const flat = await this.redis.zrange(key, cursor ? cursor.score : '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', offset, count, 'WITHSCORES');
    const out: RunCursor[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const entry = { runId: flat[i]!, score: flat[i + 1]! };
      if (isAfterCursor(entry, cursor)) out.push(entry);
    }
    return out;
  }

  private parseView(raw: string | null, runId: string): RunView | null {
    if (raw === null) return null;
    try {
      return RunViewSchema.parse(JSON.parse(raw));
    } catch (err) {
      this.logger.warn({ err, runId }, 'run view does not parse; left out of the list');
      return null;
    }
  }

  async getIdempotency(project: string, key: string): Promise<IdempotencyRecord | null> {
    const raw = await this.redis.get(this.names.idempotencyKey(project, key));
    return raw === null ? null : IdempotencyRecordSchema.parse(JSON.parse(raw));
  }

  /** Claims the key for a new run; false when someone holds it already. */
  async claimIdempotency(project: string, key: string, record: IdempotencyRecord): Promise<boolean> {
    const res = await this.redis.set(this.names.idempotencyKey(project, key), JSON.stringify(record), 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
    return res === 'OK';
  }
}

function summary(view: RunView): RunSummary {
  const { steps: _steps, input: _input, output: _output, ...rest } = view;
  return rest;
}

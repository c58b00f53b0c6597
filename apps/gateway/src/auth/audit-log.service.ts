/**
 * The audit log: every mutation and every denied request, as one record on
 * the namespace's audit stream (JetStream, one subject per project).
 * Records are written after the answer is sent (so a slow NATS never delays
 * a request): those of one turn of the event loop together, one acked message
 * per project (a gateway under load answers many requests a turn), so one
 * publish and one ack serve them all. A record that cannot be stored is logged
 * with all its fields. Records still waiting when the gateway stops are
 * written before its NATS connection closes.
 */
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { AuditRecord } from '@muse/contracts';
import { TurnBatch, type JetStreamBus } from '@muse/messaging';
import { LOGGER, type Logger } from '@muse/telemetry';
import { BUS } from '../gateway.tokens.js';

@Injectable()
export class AuditLog implements OnApplicationShutdown {
  private readonly turn = new TurnBatch<AuditRecord>((records) => this.write(records));
  private readonly writes = new Set<Promise<void>>();

  constructor(
    @Inject(BUS) private readonly bus: Pick<JetStreamBus, 'appendAudit' | 'readAudit'>,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  record(r: AuditRecord): void {
    this.turn.add([r]);
  }

  read(projects: readonly string[] | '*', limit: number): Promise<AuditRecord[]> {
    return this.bus.readAudit(projects, limit);
  }

  /** Resolves once every record given so far is stored, or logged as not stored. */
  async drain(): Promise<void> {
    this.turn.take();
    await Promise.all(this.writes);
  }

  /** After the HTTP server has stopped (no request is left to audit), before the bus closes. */
  onApplicationShutdown(): Promise<void> {
    return this.drain();
  }

  private write(records: AuditRecord[]): void {
    const lost = (audit: AuditRecord, err: unknown) => this.logger.error({ err, audit }, 'audit record not stored');
    const write = this.bus
      .appendAudit(records)
      .then(
        (failed) => failed.forEach(({ records: group, err }) => group.forEach((r) => lost(r, err))),
        (err: unknown) => records.forEach((r) => lost(r, err)),
      )
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
  }
}

/** HTTP statuses that mean "refused for who you are or how much you ask". */
const DENIED_STATUSES = new Set([401, 403, 429]);

/**
 * Which requests the audit log keeps, and their outcome: every mutation
 * (any method but GET/HEAD/OPTIONS) and every denied request; a 404 for a
 * project the caller may not use counts as denied.
 */
export function auditOutcome(method: string, status: number, code: string | undefined): AuditRecord['outcome'] | null {
  const denied = DENIED_STATUSES.has(status) || code === 'MUSE_ERR_PROJECT_NOT_FOUND';
  const mutation = !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase());
  if (!denied && !mutation) return null;
  if (denied) return 'denied';
  return status < 400 ? 'allowed' : 'failed';
}

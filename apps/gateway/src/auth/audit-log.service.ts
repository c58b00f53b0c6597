/**
 * The audit log: every mutation and every denied request, as one record on
 * the namespace's audit stream (JetStream, one subject per project).
 * Records are written after the answer is sent (so a slow NATS never delays
 * a request); a record that cannot be stored is logged with all its fields.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { AuditRecord } from '@muse/contracts';
import type { JetStreamBus } from '@muse/messaging';
import { LOGGER, type Logger } from '@muse/telemetry';
import { BUS } from '../gateway.tokens.js';

@Injectable()
export class AuditLog {
  constructor(
    @Inject(BUS) private readonly bus: JetStreamBus,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  record(r: AuditRecord): void {
    this.bus.appendAudit(r).catch((err: unknown) => this.logger.error({ err, audit: r }, 'audit record not stored'));
  }

  read(projects: readonly string[] | '*', limit: number): Promise<AuditRecord[]> {
    return this.bus.readAudit(projects, limit);
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

/**
 * Muse's JetStream transport, on the official nats.js client. Nest's NATS
 * transport speaks only core NATS (no acks, no replay, no dedupe), so events
 * and commands go through this class instead.
 *
 * Two streams: the run log (one subject per run; the coordinator appends with
 * an expected last subject sequence, so a run's log has exactly one writer at
 * a time) and the command stream (submissions, cancellations, worker reports;
 * consumed by a durable consumer shared by every coordinator replica).
 */
import { connect, credsAuthenticator, headers as natsHeaders, nkeyAuthenticator, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { ROOT_CONTEXT, SpanKind, context, propagation, trace, type Context } from '@opentelemetry/api';
import { readFileSync } from 'node:fs';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import {
  AuditRecordSchema,
  CommandSchema,
  ProfilingControlSchema,
  ProfilingReplySchema,
  type ProfilingReply,
  type ServiceProfile,
  ScalerDecisionEventSchema,
  type AuditRecord,
  type Command,
  type MuseNames,
  type RunEvent,
  type ScalerDecisionEvent,
} from '@muse/contracts';
import { withSpan } from '@muse/telemetry';
import { decodeJson, decodeJsonBatch, encodeJson, encodeJsonBatches } from './codec.js';
import { TurnBatch } from './turn-batch.js';
import { CommandTooLargeError, EventTooLargeError, WrongLastSequenceError } from './errors.js';
import { RunEventFeed } from './run-event-feed.js';
import { RUN_LOG_CHUNK_BYTES, decodeRunEvents, encodeRunEvents } from './run-log-codec.js';

/** Convert ms to the nanoseconds JetStream's API takes. */
const nanos = (ms: number): number => ms * 1_000_000;
/** NATS's own default `max_payload`, for a connection that has not heard the server's yet. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Bytes of a message kept for the headers sent with it (message id, expected sequence, trace context). */
const HEADER_ROOM = 4 * 1024;
/** Bytes a command leaves below the message limit for the event it becomes, whose envelope is a little larger. */
const COMMAND_TO_EVENT_ROOM = 1024;
/** Audit records one message holds at most (`appendAudit`, `sendAudit`). */
export const AUDIT_BATCH_MAX = 256;

export interface BusOptions {
  url: string;
  names: MuseNames;
  /** Connection name shown by the NATS server (`muse-<service>`). */
  name: string;
  /** Per-run log retention, in ms. @default 30 days */
  runRetentionMs?: number;
  /** Duplicate window for message ids, in ms. @default 120_000 */
  duplicateWindowMs?: number;
  /** Credentials and TLS; none = anonymous plain-text connection. */
  auth?: NatsAuth;
}

/** How a service authenticates to NATS (NATS_USER/NATS_PASSWORD or NATS_CREDS_FILE; NATS_TLS_*). */
export interface NatsAuth {
  user?: string;
  password?: string;
  /** A `.creds` file (JWT and nkey seed). */
  credsFile?: string;
  /** A file holding the service's nkey seed (`SU…`): the server knows its public key. */
  nkeySeedFile?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** The NATS auth of a service's parsed config. */
export function natsAuthFromConfig(c: {
  NATS_USER?: string | undefined;
  NATS_PASSWORD?: string | undefined;
  NATS_CREDS_FILE?: string | undefined;
  NATS_NKEY_SEED_FILE?: string | undefined;
  NATS_TLS_CA?: string | undefined;
  NATS_TLS_CERT?: string | undefined;
  NATS_TLS_KEY?: string | undefined;
}): NatsAuth {
  const a: NatsAuth = {};
  if (c.NATS_USER !== undefined) a.user = c.NATS_USER;
  if (c.NATS_PASSWORD !== undefined) a.password = c.NATS_PASSWORD;
  if (c.NATS_CREDS_FILE !== undefined) a.credsFile = c.NATS_CREDS_FILE;
  if (c.NATS_NKEY_SEED_FILE !== undefined) a.nkeySeedFile = c.NATS_NKEY_SEED_FILE;
  if (c.NATS_TLS_CA !== undefined) a.tlsCa = c.NATS_TLS_CA;
  if (c.NATS_TLS_CERT !== undefined) a.tlsCert = c.NATS_TLS_CERT;
  if (c.NATS_TLS_KEY !== undefined) a.tlsKey = c.NATS_TLS_KEY;
  return a;
}

/** nats.js connection options for `auth`. */
function connectionAuth(auth: NatsAuth | undefined): Record<string, unknown> {
  if (!auth) return {};
  const o: Record<string, unknown> = {};
  if (auth.user !== undefined) o.user = auth.user;
  if (auth.password !== undefined) o.pass = auth.password;
  // Read once here: a missing file fails the boot with its path, not a vague auth error later.
  if (auth.credsFile !== undefined) o.authenticator = credsAuthenticator(readFileSync(auth.credsFile));
  else if (auth.nkeySeedFile !== undefined) o.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(auth.nkeySeedFile, 'utf8').trim()));
  if (auth.tlsCa !== undefined || auth.tlsCert !== undefined || auth.tlsKey !== undefined) {
    o.tls = {
      ...(auth.tlsCa !== undefined ? { caFile: auth.tlsCa } : {}),
      ...(auth.tlsCert !== undefined ? { certFile: auth.tlsCert } : {}),
      ...(auth.tlsKey !== undefined ? { keyFile: auth.tlsKey } : {}),
    };
  }
  return o;
}

/** The slice of a service's kit the bus registers itself with. */
export interface BusHost {
  readiness: { add(name: string, check: () => Promise<void>): void };
  onShutdown(fn: () => Promise<void> | void): void;
  /** The process's profiler (the kit's): the bus answers the cluster's profiling sessions with it. */
  profiler?: ProfilingTarget;
}

/** What the bus needs of a service's profiler (`ServiceProfiler` in telemetry). */
export interface ProfilingTarget {
  readonly service: string;
  readonly instance: string;
  setMessageProbe(probe: () => { in: number; out: number }): void;
  start(sessionId: string, opts: { maxSeconds: number; cpuProfile: boolean }): Promise<void>;
  stop(sessionId: string): Promise<unknown>;
}

export interface CommandContext {
  /** How many times JetStream has delivered this message (1 on the first try). */
  deliveryCount: number;
  streamSeq: number;
  /** Tell JetStream the handler is still working (resets the ack deadline). */
  working(): void;
  /** When JetStream stored the message, in ms since the epoch (message latency = now - this). */
  publishedAtMs?: number;
}

export interface Subscription$ {
  stop(): Promise<void>;
}

/** A core NATS message as `subscribeQueue` hands it over. */
export interface IncomingMessage {
  subject: string;
  data: Uint8Array;
  header(name: string): string | undefined;
  /** Answers a request; does nothing for a plain publish. */
  respond(payload: unknown): void;
}

export class JetStreamBus {
  private readonly consumers: ConsumerMessages[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly feeds = new Set<RunEventFeed>();
  private readonly subs: Subscription[] = [];
  /** Records `sendAudit` took this turn, sent after it. */
  private readonly auditTurn = new TurnBatch<AuditRecord>((records) => this.publishAudit(records));

  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly names: MuseNames,
    private readonly opts: BusOptions,
  ) {}

  static async connect(opts: BusOptions): Promise<JetStreamBus> {
    const nc = await connect({
      servers: opts.url.split(','),
      name: opts.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // nats.js otherwise builds an Error (a stack trace) for every request and publish ack up front, in case it
      // times out: 9% of a busy coordinator's CPU in the bench's profile. Timeouts still say what timed out.
      noAsyncTraces: true,
      ...connectionAuth(opts.auth),
    });
    const jsm = await jetstreamManager(nc);
    return new JetStreamBus(nc, jetstream(nc), jsm, opts.names, opts);
  }

  /**
   * The bus of a service: connected, streams ensured (idempotent, so no
   * service depends on another having booted first), a `nats` readiness
   * check, and closed on shutdown.
   */
  static async open(host: BusHost, opts: BusOptions): Promise<JetStreamBus> {
    const bus = await JetStreamBus.connect(opts);
    host.onShutdown(() => bus.close());
    if (host.profiler) bus.serveProfiling(host.profiler);
    await bus.ensureStreams();
    host.readiness.add('nats', async () => {
      if (!bus.isConnected()) throw new Error('NATS connection closed');
      await bus.ping();
    });
    return bus;
  }

  /** Creates (or brings up to date) both streams; safe to call from every replica at every boot. */
  async ensureStreams(): Promise<void> {
    const dup = nanos(this.opts.duplicateWindowMs ?? 120_000);
    await this.ensureStream({
      name: this.names.runsStream,
      subjects: [this.names.runSubjectWildcard],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(this.opts.runRetentionMs ?? 30 * 24 * 3600_000),
      duplicate_window: dup,
      num_replicas: 1,
    });
    await this.ensureStream({
      name: this.names.commandStream,
      subjects: [this.names.commandSubjectWildcard],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(7 * 24 * 3600_000),
      duplicate_window: dup,
      num_replicas: 1,
    });
  }

  /**
   * The audit log: every mutation and denied request at the gateway, one
   * subject per project, kept 90 days. Only the gateway writes and reads it,
   * so only the gateway creates it (and only its NATS user may).
   */
  async ensureAuditStream(): Promise<void> {
    const dup = nanos(this.opts.duplicateWindowMs ?? 120_000);
    await this.ensureStream({
      name: this.names.auditStream,
      subjects: [this.names.auditSubjectWildcard],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(90 * 24 * 3600_000),
      duplicate_window: dup,
      num_replicas: 1,
    });
  }

  /**
   * The scaler's decision stream (`scaler.decision` events). Only the scaler
   * creates it (and may: see `servicePermissions`), so it is not in
   * `ensureStreams`. @default 7 days of history
   */
  async ensureScalerStream(): Promise<void> {
    await this.ensureStream({
      name: this.names.scalerStream,
      subjects: [this.names.scalerDecisionSubject],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(7 * 24 * 3600_000),
      num_replicas: 1,
    });
  }

  /** Stores one `scaler.decision`; resolves once JetStream acked. */
  async appendScalerDecision(decision: ScalerDecisionEvent, timeoutMs = 5_000): Promise<number> {
    const ack = await this.js.publish(this.names.scalerDecisionSubject, encodeJson(ScalerDecisionEventSchema.parse(decision)), { timeout: timeoutMs });
    return ack.seq;
  }

  /** Every stored `scaler.decision`, oldest first (tests and audits; the stream is small). */
  async readScalerDecisions(): Promise<ScalerDecisionEvent[]> {
    const info = await this.jsm.streams.info(this.names.scalerStream).catch(() => null);
    if (!info || info.state.messages === 0) return [];
    const out: ScalerDecisionEvent[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await this.jsm.streams.getMessage(this.names.scalerStream, { seq }).catch(() => null);
      if (m) out.push(ScalerDecisionEventSchema.parse(decodeJson(m.data)));
    }
    return out;
  }

  /**
   * Stores audit records, each message acked by JetStream: the records of one project together, as one message
   * holding a JSON array of up to AUDIT_BATCH_MAX of them (one record alone is stored as its bare object), so a
   * gateway that audits many requests at once pays one publish and one ack for them.
   * A record that is not a valid audit record fails alone, as it did when each record was a message of its own.
   * @returns the records that were not stored (none when all were): each invalid one alone, the others grouped by
   * message, each group with why
   */
  async appendAudit(records: readonly AuditRecord[], timeoutMs = 5_000): Promise<Array<{ records: AuditRecord[]; err: unknown }>> {
    const failed: Array<{ records: AuditRecord[]; err: unknown }> = [];
    const valid: AuditRecord[] = [];
    for (const r of records) {
      const checked = AuditRecordSchema.safeParse(r);
      if (checked.success) valid.push(checked.data);
      else failed.push({ records: [r], err: checked.error });
    }
    await Promise.all(
      this.auditMessages(valid).map((m) => this.js.publish(m.subject, m.data, { timeout: timeoutMs }).then(
        () => undefined,
        (err: unknown) => void failed.push({ records: m.records, err }),
      )),
    );
    return failed;
  }

  /**
   * Sends audit records without waiting for the stream's ack (a plain publish the audit stream captures), in the
   * messages `appendAudit` stores: for records that restate what a log already holds durably (the coordinator's
   * state transitions, each an event of its run's log), where an ack per record would cost a round trip per event.
   * The records of every call in one turn of the event loop go out together after it (a fold of a run's commands
   * makes several transitions at once, and a coordinator folds many runs a turn under load); `close` sends what is
   * still waiting. A message the server drops is not retried.
   */
  sendAudit(records: readonly AuditRecord[]): void {
    this.auditTurn.add(records.map((r) => AuditRecordSchema.parse(r)));
  }

  private publishAudit(records: AuditRecord[]): void {
    if (this.nc.isClosed()) return;
    try {
      for (const m of this.auditMessages(records)) this.nc.publish(m.subject, m.data);
    } catch {
      // The connection is draining: these records are dropped, as a message the server drops would be.
    }
  }

  /** Checked records as audit messages: by project (`_` for none), up to AUDIT_BATCH_MAX and the message limit each. */
  private auditMessages(records: readonly AuditRecord[]): Array<{ subject: string; data: Uint8Array; records: AuditRecord[] }> {
    const byProject = new Map<string, AuditRecord[]>();
    for (const record of records) {
      const project = record.project ?? '_';
      const list = byProject.get(project);
      if (list) list.push(record);
      else byProject.set(project, [record]);
    }
    const out: Array<{ subject: string; data: Uint8Array; records: AuditRecord[] }> = [];
    for (const [project, list] of byProject) {
      let at = 0;
      for (const { data, count } of encodeJsonBatches(list, this.maxMessageBytes, AUDIT_BATCH_MAX)) {
        out.push({ subject: this.names.auditSubject(project), data, records: list.slice(at, (at += count)) });
      }
    }
    return out;
  }

  /**
   * The newest `limit` audit records of `projects` (`'*'`: every project),
   * oldest first, looking back at most `scan` messages of the whole stream
   * (a message holds one record, or several of one project: see `appendAudit`).
   */
  async readAudit(projects: readonly string[] | '*', limit: number, scan = 10_000): Promise<AuditRecord[]> {
    const info = await this.jsm.streams.info(this.names.auditStream);
    const last = info.state.last_seq;
    if (info.state.messages === 0) return [];
    // One filter subject (several need nats-server 2.10): one project's, or all of them filtered here.
    const only = projects !== '*' && projects.length === 1 ? projects[0]! : undefined;
    const wanted = projects === '*' ? null : new Set(projects);
    const consumer = await this.js.consumers.get(this.names.auditStream, {
      filter_subjects: only !== undefined ? this.names.auditSubject(only) : this.names.auditSubjectWildcard,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, last - scan + 1),
    });
    const out: AuditRecord[] = [];
    try {
      while (true) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 1_000 });
        let got = 0;
        let done = false;
        for await (const m of batch) {
          got++;
          for (const raw of decodeJsonBatch(m.data)) {
            const record = AuditRecordSchema.parse(raw);
            if (wanted === null || (record.project !== undefined && wanted.has(record.project))) out.push(record);
            if (out.length > limit) out.shift();
          }
          if (m.info.pending === 0 || m.seq >= last) {
            done = true;
            break;
          }
        }
        if (done || got === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return out;
  }

  private async ensureStream(cfg: Partial<StreamConfig> & { name: string }): Promise<void> {
    try {
      const info = await this.jsm.streams.info(cfg.name);
      const same = JSON.stringify(info.config.subjects) === JSON.stringify(cfg.subjects);
      if (!same) await this.jsm.streams.update(cfg.name, { subjects: cfg.subjects });
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== 10059) throw err;
      try {
        await this.jsm.streams.add(cfg);
      } catch (addErr) {
        // Another replica created it between our info and add (stream name already in use).
        if (!(addErr instanceof JetStreamApiError) || addErr.code !== 10058) throw addErr;
      }
    }
  }

  /** Publishes a command; resolves once JetStream has stored it. `msgId` makes a retry a no-op. */
  async publishCommand(cmd: Command, msgId?: string, timeoutMs = 5_000): Promise<{ seq: number; duplicate: boolean }> {
    const data = encodeJson(cmd);
    // With room to spare: the event a command becomes (a submission's run.created, a report's step.completed) is
    // a little larger than the command, and must fit the run log.
    const limit = this.maxMessageBytes - COMMAND_TO_EVENT_ROOM;
    if (data.length > limit) throw new CommandTooLargeError(cmd.kind, data.length, limit);
    const ack = await this.js.publish(this.names.commandSubject(cmd.kind), data, {
      ...(msgId ? { msgID: msgId } : {}),
      ...traceHeaders(),
      timeout: timeoutMs,
    });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  /**
   * The largest run-log or command message this bus sends, in bytes: the server's `max_payload` (1 MiB unless
   * configured) less room for the headers that go along (message id, expected sequence, trace context).
   */
  get maxMessageBytes(): number {
    return (this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) - HEADER_ROOM;
  }

  /**
   * Appends events to a run's log. `expectedLastStreamSeq` is the stream
   * sequence of the run's last event (0 for a new run); if the log moved on,
   * nothing is written and WrongLastSequenceError is thrown; if one event
   * alone is over `maxMessageBytes`, nothing is written and EventTooLargeError
   * is thrown.
   * @returns the stream sequence of the last event appended
   */
  async appendRunEvents(runId: string, events: RunEvent[], expectedLastStreamSeq: number): Promise<number> {
    const subject = this.names.runSubject(runId);
    let last = expectedLastStreamSeq;
    const limit = this.maxMessageBytes;
    // One message per append (run-log-codec.ts): one round trip, and the events land together or not at all.
    const messages = encodeRunEvents(events, Math.min(RUN_LOG_CHUNK_BYTES, limit));
    // Checked before anything goes out: a message over the limit holds one event, which no split or retry can store.
    const over = messages.find((m) => m.data.length > limit);
    if (over) throw new EventTooLargeError(runId, { type: over.first.type, id: over.first.id }, over.data.length, limit);
    for (const { data, first } of messages) {
      try {
        const ack = await this.js.publish(subject, data, {
          msgID: first.id,
          expect: { lastSubjectSequence: last },
          timeout: 5_000,
        });
        if (ack.duplicate) {
          // Already appended by an earlier try of the same handler; the log is
          // where we expected it to be only if the next check passes, so reload.
          throw new WrongLastSequenceError(runId, last);
        }
        last = ack.seq;
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === 10071) {
          throw new WrongLastSequenceError(runId, last, { cause: err });
        }
        throw err;
      }
    }
    return last;
  }

  /** The run's events with `seq >= fromSeq`, in order, and the stream sequence of the last one. */
  async readRunEvents(runId: string, fromSeq = 1): Promise<{ events: RunEvent[]; lastStreamSeq: number }> {
    const subject = this.names.runSubject(runId);
    const last = await this.lastRunMessage(runId);
    if (!last) return { events: [], lastStreamSeq: 0 };
    const consumer = await this.js.consumers.get(this.names.runsStream, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.All,
    });
    const events: RunEvent[] = [];
    try {
      while (true) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 2_000 });
        let got = 0;
        let done = false;
        for await (const m of batch) {
          got++;
          for (const ev of decodeRunEvents(m.data)) if (ev.seq >= fromSeq) events.push(ev);
          if (m.seq >= last.seq) {
            done = true;
            break;
          }
        }
        if (done || got === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return { events, lastStreamSeq: last.seq };
  }

  /** The stream sequence and event of the run's newest message, or null for an unknown run. */
  async lastRunMessage(runId: string): Promise<{ seq: number; event: RunEvent } | null> {
    try {
      const m = await this.jsm.streams.getMessage(this.names.runsStream, { last_by_subj: this.names.runSubject(runId) });
      if (!m) return null;
      return { seq: m.seq, event: decodeRunEvents(m.data).at(-1)! };
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10037) return null; // no message found
      throw err;
    }
  }

  /**
   * Events of one run (or of every run with `'*'`), in order: from the start
   * of the log with `'all'`, or only those appended from now on with `'new'`.
   * Delivery survives consumer resets (see RunEventFeed) without skipping or
   * repeating an event.
   */
  async subscribeRunEvents(
    runId: string,
    onEvent: (event: RunEvent) => void,
    from: 'all' | 'new' = 'all',
    /** Told about events skipped because they do not parse, and about retried re-subscriptions. */
    onError?: (err: unknown, stage: 'parse' | 'apply' | 'resubscribe') => void,
  ): Promise<Subscription$> {
    const subject = runId === '*' ? this.names.runSubjectWildcard : this.names.runSubject(runId);
    const lastSeq = from === 'all' ? 0 : (await this.jsm.streams.info(this.names.runsStream)).state.last_seq;
    const feed = new RunEventFeed({ js: this.js, stream: this.names.runsStream, subject, onEvent, ...(onError ? { onError } : {}) }, lastSeq);
    await feed.open();
    this.feeds.add(feed);
    return {
      stop: async () => {
        this.feeds.delete(feed);
        await feed.stop();
      },
    };
  }

  /**
   * Consumes the command stream with a durable consumer shared by every
   * replica. A handler that returns acks the command; one that throws naks it
   * for redelivery after `retryDelayMs`.
   */
  async consumeCommands(
    durable: string,
    handler: (cmd: Command, ctx: CommandContext) => Promise<void>,
    opts: { concurrency: number; ackWaitMs?: number; retryDelayMs?: number; onError?: (err: unknown, cmd: unknown) => void },
  ): Promise<void> {
    const ackWait = opts.ackWaitMs ?? 30_000;
    try {
      await this.jsm.consumers.info(this.names.commandStream, durable);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== 10014) throw err;
      await this.jsm.consumers.add(this.names.commandStream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(ackWait),
        max_ack_pending: 10_000,
        filter_subject: this.names.commandSubjectWildcard,
      });
    }
    const consumer = await this.js.consumers.get(this.names.commandStream, durable);
    const messages = await consumer.consume({ max_messages: opts.concurrency * 2 });
    this.consumers.push(messages);
    let inFlight = 0;
    const waiters: Array<() => void> = [];
    const handle = async (m: JsMsg): Promise<void> => {
      let cmd: Command;
      try {
        cmd = CommandSchema.parse(decodeJson(m.data));
      } catch (err) {
        opts.onError?.(err, m.string());
        m.term(); // a command that does not parse never will
        return;
      }
      // The command's trace: its headers' (the publisher's span), else the one stored in the command (a submission).
      const stored = 'traceparent' in cmd && typeof cmd.traceparent === 'string' ? cmd.traceparent : undefined;
      const parent = m.headers ? extractHeaders(m.headers) : ROOT_CONTEXT;
      const ctx = trace.getSpanContext(parent) || stored === undefined ? parent : propagation.extract(ROOT_CONTEXT, { traceparent: stored });
      await traced(`muse.command ${cmd.kind}`, SpanKind.CONSUMER, ctx, { 'muse.run_id': cmd.runId, 'muse.command.kind': cmd.kind, 'messaging.message.delivery_count': m.info.deliveryCount }, async () => {
        try {
          await handler(cmd, { deliveryCount: m.info.deliveryCount, streamSeq: m.seq, working: () => m.working(), publishedAtMs: Math.floor(m.info.timestampNanos / 1_000_000) });
          m.ack();
        } catch (err) {
          opts.onError?.(err, cmd);
          m.nak(opts.retryDelayMs ?? 500);
          throw err;
        }
      }).catch(() => undefined);
    };
    void (async () => {
      for await (const m of messages) {
        while (inFlight >= opts.concurrency) await new Promise<void>((r) => waiters.push(r));
        inFlight++;
        const p = handle(m).finally(() => {
          inFlight--;
          this.inFlight.delete(p);
          waiters.shift()?.();
        });
        this.inFlight.add(p);
      }
    })();
  }

  /**
   * Takes part in the cluster's profiling sessions: every process listens to
   * `profilingControlSubject` (no queue group) and answers on
   * `profilingReportSubject` — `started` on a start, its profile on a stop.
   */
  serveProfiling(profiler: ProfilingTarget): void {
    profiler.setMessageProbe(() => {
      const s = this.nc.stats();
      return { in: s.inMsgs, out: s.outMsgs };
    });
    const reply = (r: ProfilingReply): void => this.nc.publish(this.names.profilingReportSubject, encodeJson(ProfilingReplySchema.parse(r)));
    this.subscribe(this.names.profilingControlSubject, (payload) => {
      const c = ProfilingControlSchema.parse(payload);
      void (async () => {
        if (c.op === 'start') {
          // Answer first: starting V8's profiler can hold the event loop for a moment (it walks the compiled code).
          reply({ kind: 'started', sessionId: c.sessionId, service: profiler.service, instance: profiler.instance });
          await profiler.start(c.sessionId, { maxSeconds: c.maxSeconds, cpuProfile: c.cpuProfile });
        } else {
          const profile = await profiler.stop(c.sessionId);
          if (profile) reply({ kind: 'profile', profile: profile as ServiceProfile });
        }
      })().catch(() => undefined); // best effort: a process that cannot profile is listed as missing
    });
  }

  /**
   * Core NATS messages on `subject` (wildcards allowed) in queue group `queue`: one replica gets each. The handler
   * sees the concrete subject, the raw payload, the headers, and can answer a request (a plain publish has no reply).
   */
  subscribeQueue(subject: string, queue: string, onMessage: (m: IncomingMessage) => Promise<void>): void {
    const sub = this.nc.subscribe(subject, { queue });
    this.subs.push(sub);
    void (async () => {
      for await (const m of sub) {
        const msg: IncomingMessage = {
          subject: m.subject,
          data: m.data,
          header: (name) => m.headers?.get(name) || undefined,
          respond: (payload) => {
            if (m.reply) m.respond(encodeJson(payload));
          },
        };
        void onMessage(msg).catch(() => undefined);
      }
    })();
  }

  /** Serves NATS requests on `subject` in a queue group: one replica answers each. */
  serve(subject: string, handler: (payload: unknown) => Promise<unknown>): void {
    const sub = this.nc.subscribe(subject, { queue: `${subject}.workers` });
    this.subs.push(sub);
    void (async () => {
      for await (const m of sub) {
        const parent = m.headers ? extractHeaders(m.headers) : ROOT_CONTEXT;
        void traced(`muse.serve ${subject}`, SpanKind.SERVER, parent, { 'messaging.destination.name': subject }, async () => {
          let reply: unknown;
          try {
            reply = await handler(decodeJson(m.data));
          } catch (err) {
            reply = { ok: false, error: { code: 'MUSE_ERR_INTERNAL', message: String(err), retryable: true } };
          }
          m.respond(encodeJson(reply));
        });
      }
    })();
  }

  async request(subject: string, payload: unknown, timeoutMs = 10_000): Promise<unknown> {
    return traced(`muse.request ${subject}`, SpanKind.CLIENT, context.active(), { 'messaging.destination.name': subject }, async () => {
      const res = await this.nc.request(subject, encodeJson(payload), { timeout: timeoutMs, ...traceHeaders() });
      return decodeJson(res.data);
    });
  }

  /** Core NATS publish (no persistence): heartbeats and other best-effort signals. */
  publish(subject: string, payload: unknown, hdrs?: Record<string, string>): void {
    const h = hdrs ? natsHeaders() : undefined;
    if (h && hdrs) for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
    this.nc.publish(subject, encodeJson(payload), h ? { headers: h } : undefined);
  }

  subscribe(subject: string, onMessage: (payload: unknown) => void): void {
    const sub = this.nc.subscribe(subject);
    this.subs.push(sub);
    void (async () => {
      for await (const m of sub) {
        try {
          onMessage(decodeJson(m.data));
        } catch {
          // best-effort channel: a bad message is dropped
        }
      }
    })();
  }

  /** Like `subscribe`, for a subscription that ends before the bus does (a WebSocket client's): `stop()` unsubscribes. */
  subscribeUntil(subject: string, onMessage: (payload: unknown) => void): { stop(): void } {
    const sub = this.nc.subscribe(subject);
    void (async () => {
      for await (const m of sub) {
        try {
          onMessage(decodeJson(m.data));
        } catch {
          // best-effort channel: a bad message is dropped
        }
      }
    })();
    return { stop: () => sub.unsubscribe() };
  }

  isConnected(): boolean {
    return !this.nc.isClosed();
  }

  async ping(): Promise<void> {
    await this.nc.flush();
  }

  /** Stops taking commands and waits for the handlers already running to finish. */
  async stopConsuming(): Promise<void> {
    for (const c of this.consumers) await c.close().catch(() => undefined);
    this.consumers.length = 0;
    await Promise.allSettled([...this.inFlight]);
  }

  /** Stops consuming (in-flight handlers finish) and drains the connection. */
  async close(): Promise<void> {
    await this.stopConsuming();
    this.auditTurn.take();
    for (const f of this.feeds) await f.stop();
    this.feeds.clear();
    for (const s of this.subs) s.unsubscribe();
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => undefined);
  }

  /** Deletes both streams of this namespace: for tests that clean up after themselves. */
  async deleteStreams(): Promise<void> {
    for (const s of [this.names.runsStream, this.names.commandStream, this.names.auditStream, this.names.scalerStream]) {
      await this.jsm.streams.delete(s).catch(() => undefined);
    }
  }
}

/**
 * Trace context through NATS headers (W3C `traceparent`), on `@opentelemetry/api`
 * alone: with no SDK registered (tracing off) nothing is injected and every span
 * is a non-recording no-op, so the bus pays close to nothing.
 */
function traceHeaders(): { headers?: MsgHdrs } {
  if (!trace.getSpan(context.active())) return {};
  const h = natsHeaders();
  propagation.inject(context.active(), h, { set: (c, k, v) => c.set(k, v) });
  return h.keys().length > 0 ? { headers: h } : {};
}

function extractHeaders(h: MsgHdrs): Context {
  return propagation.extract(ROOT_CONTEXT, h, {
    keys: (c) => c.keys(),
    get: (c, k) => (c.has(k) ? c.get(k) : undefined),
  });
}

/** `fn` in a span under `parent`; the bus never starts a trace, so without a parent span it just runs `fn`. */
async function traced<T>(name: string, kind: SpanKind, parent: Context, attributes: Record<string, string | number>, fn: () => Promise<T>): Promise<T> {
  if (!trace.getSpanContext(parent)) return fn();
  return withSpan(name, { kind, parent, attributes }, fn);
}

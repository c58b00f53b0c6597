/**
 * Cluster-wide profiling sessions. The gateway broadcasts `start` and `stop`
 * on `profilingControlSubject`; every process (this one included) answers on
 * `profilingReportSubject` — `started`, then its profile — and the gateway
 * builds the report naming the bottleneck (`buildProfileReport`).
 *
 * Sessions live in this replica's memory: a stop that reaches another gateway
 * replica is a 404 (any replica may start a new one). A session nobody stops
 * ends by itself after `maxSeconds` in every process.
 */
import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  MuseError,
  ProfilingReplySchema,
  type MuseNames,
  type ProfileReport,
  type ProfilingControl,
  type ProfilingSession,
  type ServiceProfile,
  type StartProfilingBody,
} from '@muse/contracts';
import type { JetStreamBus } from '@muse/messaging';
import { buildProfileReport } from '@muse/telemetry';
import { BUS, NAMES } from '../gateway.tokens.js';

/** How long the gateway listens for `started` answers, in ms. */
const START_WAIT_MS = 1_500;
/** How long it waits for the profiles after a stop (a process sends its own once its profiler stopped), in ms. */
const STOP_WAIT_MS = 5_000;
/**
 * After every process that answered the start sent its profile, how much longer to listen, in ms: a process whose
 * `started` came too late for the start's window still gets its profile in.
 */
const LATE_GRACE_MS = 300;
/** @default 60 s */
const DEFAULT_MAX_SECONDS = 60;

@Injectable()
export class ProfilingService {
  private readonly sessions = new Map<string, ProfilingSession>();

  constructor(
    @Inject(BUS) private readonly bus: JetStreamBus,
    @Inject(NAMES) private readonly names: MuseNames,
  ) {}

  async start(body: StartProfilingBody): Promise<ProfilingSession> {
    const id = `prof_${randomBytes(8).toString('hex')}`;
    const maxSeconds = body.maxSeconds ?? DEFAULT_MAX_SECONDS;
    // Off unless asked: V8's profiler is the one part of a session whose cost the bench row could not bound under 5%.
    const cpuProfile = body.cpuProfile ?? false;
    const replies = await this.collect({ op: 'start', sessionId: id, maxSeconds, cpuProfile }, START_WAIT_MS, () => false);
    const session: ProfilingSession = {
      id,
      startedAt: new Date().toISOString(),
      maxSeconds,
      cpuProfile,
      processes: replies.flatMap((r) => (r.kind === 'started' && r.sessionId === id ? [{ service: r.service, instance: r.instance }] : [])),
    };
    this.sessions.set(id, session);
    // Forgotten once every process has stopped it by itself (plus the time a late stop may take).
    setTimeout(() => this.sessions.delete(id), (maxSeconds + 60) * 1000).unref();
    return session;
  }

  get(id: string): ProfilingSession {
    const s = this.sessions.get(id);
    if (!s) throw new MuseError('MUSE_ERR_PROFILING_SESSION_NOT_FOUND', `No profiling session "${id}"`, { details: { id } });
    return s;
  }

  /** Stops the session everywhere and builds the report from the profiles that came back in time. */
  async stop(id: string): Promise<ProfileReport> {
    const session = this.get(id);
    this.sessions.delete(id);
    const expected = session.processes.length;
    const profiles: ServiceProfile[] = [];
    await this.collect({ op: 'stop', sessionId: id }, STOP_WAIT_MS, (r) => {
      if (r.kind === 'profile' && r.profile.sessionId === id) profiles.push(r.profile);
      return expected > 0 && profiles.length >= expected;
    }, LATE_GRACE_MS);
    const got = new Set(profiles.map((p) => `${p.service}/${p.instance}`));
    const missing = session.processes.filter((p) => !got.has(`${p.service}/${p.instance}`));
    return buildProfileReport(id, profiles, missing);
  }

  /** Publishes `control` and gathers the answers for up to `waitMs`, or until `graceMs` after `enough` says so. */
  private async collect(
    control: ProfilingControl,
    waitMs: number,
    enough: (r: ReturnType<typeof ProfilingReplySchema.parse>) => boolean,
    graceMs = 0,
  ): Promise<Array<ReturnType<typeof ProfilingReplySchema.parse>>> {
    const out: Array<ReturnType<typeof ProfilingReplySchema.parse>> = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const sub = this.bus.subscribeUntil(this.names.profilingReportSubject, (payload) => {
      const r = ProfilingReplySchema.safeParse(payload);
      if (!r.success) return;
      out.push(r.data);
      if (enough(r.data)) setTimeout(done, graceMs);
    });
    try {
      await this.bus.ping(); // the subscription is in place before anyone can answer
      this.bus.publish(this.names.profilingControlSubject, control);
      const timer = setTimeout(done, waitMs);
      await finished;
      clearTimeout(timer);
      // This process answers the same message and may have been busy (starting V8's profiler holds the loop):
      // the timer can fire before the answers already in the socket are read. A round trip to the server reads them.
      await this.bus.ping();
    } finally {
      sub.stop();
    }
    return out;
  }
}

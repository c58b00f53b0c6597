/**
 * What a step costs here with no Muse code at all, only the round trips of a design. A "coordinator" (this process)
 * owns each run: it appends each step's events to a run log in JetStream (acked, fenced by the subject's last
 * sequence, as Muse's append is) and hands the next job to a "worker" (a child process); the worker publishes its
 * report to a command stream (acked), which the coordinator takes from a durable consumer and acks.
 *
 * Two designs are measured this way:
 * - the one earlier measurements point to: 3 inter-process hops a step, no run lock (one owner a run), the job pushed
 *   over core NATS (the run log is what makes it durable) or, to show what the queue's pickup costs on its own,
 *   through BullMQ;
 * - today's (`lock: true`, BullMQ dispatch): each command handled under Muse's own run lock (`RunLocks`: lock and
 *   fencing token in one round trip, released after), the job through BullMQ. Muse's coordinator adds the engine, the
 *   run's view and the bookkeeping around them to this: where a run has one command at a time (a chain), whatever
 *   this floor cannot reach, Muse cannot either (with several, Muse handles those queued for a run under one hold).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { RunLocks } from '@muse/locks';
import { decodeJson, encodeJson } from '@muse/messaging';
import { createRedis } from '@muse/queues';
import { bareBullPrefix, bareStreamName } from './baselines.js';
import { ProcessUsage, type BenchContext } from './context.js';
import { summarize } from './stats.js';

export type Dispatch = 'nats' | 'bullmq';

export interface FloorDesign {
  dispatch: Dispatch;
  /** Every command under the run's lock, as Muse's coordinator takes it. */
  lock?: boolean;
  /** Jobs the worker runs at once (BullMQ's concurrency). @default 25 */
  concurrency?: number;
}

/** The names one floor measurement uses, all under the bench's namespace. */
export function floorNames(namespace: string) {
  return {
    runStream: bareStreamName(namespace, 'FLOOR_RUNS'),
    runSubject: (runId: string) => `${namespace}.floor.run.${runId}`,
    commandStream: bareStreamName(namespace, 'FLOOR_CMD'),
    commandSubject: (runId: string) => `${namespace}.floor.cmd.${runId}`,
    jobSubject: `${namespace}.floor.jobs`,
    queue: `${namespace}.floor`,
    bullPrefix: bareBullPrefix(namespace),
  };
}

interface Floor {
  /**
   * Runs `runId` from its first append to its last: `layers[i]` steps at once (each its own job and report, each
   * report a command of its own), the next layer queued by the command of the last report of the one before.
   */
  run(runId: string, layers: readonly number[]): Promise<void>;
  /** Pids of this design's processes besides Redis and NATS: this one (the coordinator) and the worker. */
  pids: Record<string, number>;
  close(): Promise<void>;
}

async function openFloor(ctx: BenchContext, design: FloorDesign): Promise<Floor> {
  const names = floorNames(ctx.namespace);
  const nc = await connect({ servers: ctx.natsUrl });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  // The lock's connection auto-pipelined, as the coordinator's state connection is; the queue's of its own.
  const lockConn = design.lock ? createRedis(ctx.redisUrl, { enableAutoPipelining: true }) : undefined;
  const queueConn = design.dispatch === 'bullmq' ? createRedis(ctx.redisUrl) : undefined;
  const queue = queueConn ? new Queue(names.queue, { connection: queueConn, prefix: names.bullPrefix }) : undefined;
  const locks = lockConn ? new RunLocks(lockConn, ctx.names) : undefined;
  let worker: ReturnType<typeof fork> | undefined;
  let stopConsuming = () => {};
  const close = async () => {
    stopConsuming();
    worker?.kill();
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    queueConn?.disconnect();
    lockConn?.disconnect();
    await jsm.streams.delete(names.runStream).catch(() => undefined);
    await jsm.streams.delete(names.commandStream).catch(() => undefined);
    await nc.close();
  };
  try {
    await jsm.streams.add({ name: names.runStream, subjects: [`${ctx.namespace}.floor.run.>`] });
    await jsm.streams.add({ name: names.commandStream, subjects: [`${ctx.namespace}.floor.cmd.>`] });
    await jsm.consumers.add(names.commandStream, { durable_name: 'coordinator', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    const args = [ctx.namespace, design.dispatch, ctx.natsUrl, ctx.redisUrl, String(design.concurrency ?? 25)];
    const child = fork(fileURLToPath(new URL('./design-floor-worker.js', import.meta.url)), args, { stdio: 'inherit' });
    worker = child;
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the floor's worker exited (${code})`)));
    });
    // Reports, handed to the run waiting for its next one (or kept until it asks: a report can beat its waiter).
    const waiting = new Map<string, (m: JsMsg) => void>();
    const early = new Map<string, JsMsg[]>();
    const consumer = await js.consumers.get(names.commandStream, 'coordinator');
    const messages = await consumer.consume({ max_messages: 1000 });
    stopConsuming = () => void messages.stop();
    void (async () => {
      for await (const m of messages) {
        const { runId } = decodeJson(m.data) as { runId: string };
        const waiter = waiting.get(runId);
        if (waiter) {
          waiting.delete(runId);
          waiter(m);
        } else early.set(runId, [...(early.get(runId) ?? []), m]);
      }
    })();
    const report = (runId: string) =>
      new Promise<JsMsg>((resolve) => {
        const kept = early.get(runId);
        const m = kept?.shift();
        if (kept?.length === 0) early.delete(runId);
        if (m) resolve(m);
        else waiting.set(runId, resolve);
      });
    const send = async (jobs: { runId: string; stepId: string }[]) => {
      if (queue) await (jobs.length === 1 ? queue.add('step', jobs[0]) : queue.addBulk(jobs.map((data) => ({ name: 'step', data }))));
      else for (const job of jobs) nc.publish(names.jobSubject, encodeJson(job));
    };
    const command = (runId: string, body: () => Promise<void>) => (locks ? locks.withRunLock(runId, body) : body());
    return {
      pids: { 'floor-coordinator': process.pid, 'floor-worker': child.pid! },
      close,
      run: async (runId, layers) => {
        let last = 0;
        const append = async (events: unknown[]) => {
          last = (await js.publish(names.runSubject(runId), encodeJson(events), { expect: { lastSubjectSequence: last } })).seq;
        };
        const jobsOf = (layer: number) => Array.from({ length: layers[layer]! }, (_, k) => ({ runId, stepId: `s${layer}.${k}` }));
        const queued = (layer: number) => jobsOf(layer).map(({ stepId }) => ({ type: 'step.queued', stepId }));
        await command(runId, async () => {
          await append([{ type: 'run.started' }, ...queued(0)]);
          await send(jobsOf(0));
        });
        for (let layer = 0; layer < layers.length; layer++) {
          for (let left = layers[layer]!; left > 0; left--) {
            const msg = await report(runId);
            const { stepId } = decodeJson(msg.data) as { stepId: string };
            const next = left === 1 ? layer + 1 : undefined;
            await command(runId, async () => {
              if (next === undefined) return append([{ type: 'step.completed', stepId }]);
              if (next === layers.length) return append([{ type: 'step.completed', stepId }, { type: 'run.completed' }]);
              await append([{ type: 'step.completed', stepId }, ...queued(next)]);
              await send(jobsOf(next));
            });
            msg.ack();
          }
        }
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Median ms per step over `reps` chains of `length` steps, one at a time (after one warm-up chain). */
export async function floorChain(ctx: BenchContext, design: FloorDesign, length: number, reps: number): Promise<number> {
  const floor = await openFloor(ctx, design);
  try {
    const perStep: number[] = [];
    const chain = Array.from({ length }, () => 1);
    for (let rep = 0; rep <= reps; rep++) {
      const t0 = performance.now();
      await floor.run(`floor-chain-${rep}`, chain);
      if (rep > 0) perStep.push((performance.now() - t0) / length);
    }
    return summarize(perStep).median;
  } finally {
    await floor.close();
  }
}

/**
 * Steps a second with `runs` runs of the shape `layers` at once (the median of `reps` rounds, after one warm-up
 * unless `warmUp` is false), and the CPU a step costs this design's processes, Redis and NATS together (over the
 * measured rounds); `detail` has it by process, with the writes.
 */
export async function floorThroughput(ctx: BenchContext, design: FloorDesign, runs: number, layers: readonly number[], reps: number, warmUp = true): Promise<{ stepsPerS: number; cpuMsPerStep: number; detail: Record<string, number> }> {
  const floor = await openFloor(ctx, design);
  try {
    const usage = new ProcessUsage(ctx, floor.pids);
    const steps = layers.reduce((a, b) => a + b, 0);
    const rates: number[] = [];
    for (let rep = warmUp ? 0 : 1; rep <= reps; rep++) {
      const round = async () => {
        const t0 = performance.now();
        await Promise.all(Array.from({ length: runs }, (_, i) => floor.run(`floor-${rep}-${i}`, layers)));
        return (runs * steps) / ((performance.now() - t0) / 1000);
      };
      if (rep === 0) await round();
      else rates.push(await usage.measure(round));
    }
    const { extra, detail } = usage.per(runs * steps * reps, 'Step');
    return { stepsPerS: summarize(rates).median, cpuMsPerStep: extra.cpuMsPerStep!, detail };
  } finally {
    await floor.close();
  }
}

/**
 * What a chain step costs here in the design that earlier measurements point to: 3 inter-process hops a step instead
 * of Muse's 5 (the run lock and the commit of outputs are round trips to Redis of their own), with no Muse code at
 * all. A "coordinator" (this process) owns the run: it appends each step's events to a run log in JetStream (acked,
 * fenced by the subject's last sequence, as Muse's append is) and hands the next job to a "worker" (a child process);
 * the worker publishes its report to a command stream (acked), which the coordinator takes from a durable consumer and
 * acks. No run lock (one owner a run) and no commit of outputs (the coordinator would write small ones with its run
 * log). The job goes out either pushed over core NATS (the run log is what makes it durable) or through BullMQ, to show
 * what the queue's pickup costs on its own.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { decodeJson, encodeJson } from '@muse/messaging';
import { createRedis } from '@muse/queues';
import { bareBullPrefix, bareStreamName } from './baselines.js';
import type { BenchContext } from './context.js';
import { summarize } from './stats.js';

export type Dispatch = 'nats' | 'bullmq';

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

/** Median ms per step over `reps` chains of `length` steps (after one warm-up chain), jobs sent by `dispatch`. */
export async function threeHopChain(ctx: BenchContext, dispatch: Dispatch, length: number, reps: number): Promise<number> {
  const names = floorNames(ctx.namespace);
  const nc = await connect({ servers: ctx.natsUrl });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const conn = dispatch === 'bullmq' ? createRedis(ctx.redisUrl) : undefined;
  const queue = conn ? new Queue(names.queue, { connection: conn, prefix: names.bullPrefix }) : undefined;
  let worker: ReturnType<typeof fork> | undefined;
  try {
    await jsm.streams.add({ name: names.runStream, subjects: [`${ctx.namespace}.floor.run.>`] });
    await jsm.streams.add({ name: names.commandStream, subjects: [`${ctx.namespace}.floor.cmd.>`] });
    await jsm.consumers.add(names.commandStream, { durable_name: 'coordinator', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    const child = fork(fileURLToPath(new URL('./design-floor-worker.js', import.meta.url)), [ctx.namespace, dispatch, ctx.natsUrl, ctx.redisUrl], { stdio: 'inherit' });
    worker = child;
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the floor's worker exited (${code})`)));
    });
    const consumer = await js.consumers.get(names.commandStream, 'coordinator');
    const messages = await consumer.consume({ max_messages: 100 });
    const reports = messages[Symbol.asyncIterator]();
    const send = async (job: { runId: string; stepId: string }) => {
      if (queue) await queue.add('step', job);
      else nc.publish(names.jobSubject, encodeJson(job));
    };
    const perStep: number[] = [];
    try {
      for (let rep = 0; rep <= reps; rep++) {
        const runId = `run${rep}`;
        let last = 0;
        const append = async (events: unknown[]) => {
          last = (await js.publish(names.runSubject(runId), encodeJson(events), { expect: { lastSubjectSequence: last } })).seq;
        };
        const t0 = performance.now();
        await append([{ type: 'run.started' }, { type: 'step.queued', stepId: 's0' }]);
        await send({ runId, stepId: 's0' });
        for (let i = 0; i < length; i++) {
          const next = await reports.next();
          if (next.done) throw new Error('the command consumer stopped');
          const report = decodeJson(next.value.data) as { stepId: string };
          const more = i + 1 < length;
          await append([{ type: 'step.completed', stepId: report.stepId }, more ? { type: 'step.queued', stepId: `s${i + 1}` } : { type: 'run.completed' }]);
          if (more) await send({ runId, stepId: `s${i + 1}` });
          next.value.ack();
        }
        if (rep > 0) perStep.push((performance.now() - t0) / length);
      }
    } finally {
      messages.stop();
    }
    return summarize(perStep).median;
  } finally {
    worker?.kill();
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    conn?.disconnect();
    await jsm.streams.delete(names.runStream).catch(() => undefined);
    await jsm.streams.delete(names.commandStream).catch(() => undefined);
    await nc.close();
  }
}

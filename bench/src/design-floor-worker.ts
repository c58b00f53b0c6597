/**
 * The worker of design-floor.ts, in a process of its own: takes each job (over core NATS or from BullMQ) and publishes
 * its report to the command stream, acked. Args: namespace, dispatch (`nats` | `bullmq`), NATS URL, Redis URL,
 * BullMQ concurrency. Says "ready" over the IPC channel once it listens; exits when that channel closes.
 */
import { Worker } from 'bullmq';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { decodeJson, encodeJson } from '@muse/messaging';
import { createRedis } from '@muse/queues';
import { floorNames } from './design-floor.js';

const [namespace, dispatch, natsUrl, redisUrl, concurrency] = process.argv.slice(2) as [string, string, string, string, string];
const names = floorNames(namespace);
const nc = await connect({ servers: natsUrl });
const js = jetstream(nc);
type Job = { runId: string; stepId: string };
const report = (job: Job) => js.publish(names.commandSubject(job.runId), encodeJson({ kind: 'step-report', runId: job.runId, stepId: job.stepId, outcome: 'completed', output: { ok: true } }));

process.once('disconnect', () => process.exit(0));
if (dispatch === 'bullmq') {
  const worker = new Worker(names.queue, async (job) => void (await report(job.data as Job)), { connection: createRedis(redisUrl), prefix: names.bullPrefix, concurrency: Number(concurrency) });
  await worker.waitUntilReady();
  process.send!('ready');
} else {
  const sub = nc.subscribe(names.jobSubject);
  await nc.flush(); // subscribed on the server before the first job is sent
  process.send!('ready');
  // Jobs run as they come (no limit: the job is pushed, and the report is all it does).
  for await (const m of sub) {
    report(decodeJson(m.data) as Job).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  }
}

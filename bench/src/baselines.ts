/**
 * The floor: what bare BullMQ and bare JetStream do on this machine in the
 * same run, under names of the benchmark's namespace.
 */
import { Queue, QueueEvents, Worker } from 'bullmq';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createRedis } from '@muse/queues';
import type { BenchContext } from './context.js';
import { percentile } from './stats.js';

const bareName = (ctx: BenchContext, what: string) => `${ctx.namespace}.bare.${what}`;

/** The BullMQ key prefix of the baselines' queues (and of the design floor's), under the bench's namespace. */
export const bareBullPrefix = (namespace: string) => `${namespace}:bare`;

/** A JetStream stream of the bench's namespace (upper case, `_` for `-`), named `<NAMESPACE>_<what>`. */
export const bareStreamName = (namespace: string, what: string) => `${namespace.toUpperCase().replace(/-/g, '_')}_${what}`;

/** Connections a baseline opened; BullMQ does not close a connection it was handed. */
const opened: Array<ReturnType<typeof createRedis>> = [];
function redisFor(ctx: BenchContext): ReturnType<typeof createRedis> {
  const c = createRedis(ctx.redisUrl);
  opened.push(c);
  return c;
}

async function withBull<T>(ctx: BenchContext, what: string, fn: (q: Queue, conn: ReturnType<typeof createRedis>) => Promise<T>): Promise<T> {
  const conn = createRedis(ctx.redisUrl);
  const q = new Queue(bareName(ctx, what), { connection: conn, prefix: bareBullPrefix(ctx.namespace) });
  try {
    return await fn(q, conn);
  } finally {
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close();
    await conn.quit();
    for (const c of opened.splice(0)) c.disconnect();
  }
}

/** add() and wait for completion, one at a time: p50 and p99 in ms. */
export async function bullRoundTrip(ctx: BenchContext, samples: number): Promise<{ p50: number; p99: number }> {
  return withBull(ctx, 'rt', async (q, conn) => {
    const worker = new Worker(q.name, async () => null, { connection: redisFor(ctx), prefix: bareBullPrefix(ctx.namespace), concurrency: 50 });
    const events = new QueueEvents(q.name, { connection: redisFor(ctx), prefix: bareBullPrefix(ctx.namespace) });
    await events.waitUntilReady();
    const times: number[] = [];
    for (let i = 0; i < samples + 5; i++) {
      const t0 = performance.now();
      const job = await q.add('x', {});
      await job.waitUntilFinished(events, 10_000);
      if (i >= 5) times.push(performance.now() - t0);
    }
    await worker.close();
    await events.close();
    void conn;
    return { p50: percentile(times, 50), p99: percentile(times, 99) };
  });
}

/** A chain of `length` jobs, each added by the worker that finished the previous one: ms per step. */
export async function bullChain(ctx: BenchContext, length: number): Promise<number> {
  return withBull(ctx, 'chain', async (q) => {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const worker = new Worker(
      q.name,
      async (job) => {
        const i = job.data.i as number;
        if (i + 1 < length) await q.add('x', { i: i + 1 });
        else done();
      },
      { connection: redisFor(ctx), prefix: bareBullPrefix(ctx.namespace), concurrency: 1 },
    );
    await worker.waitUntilReady();
    const t0 = performance.now();
    await q.add('x', { i: 0 });
    await finished;
    const perStep = (performance.now() - t0) / length;
    await worker.close();
    return perStep;
  });
}

/** No-op jobs per second: `count` jobs added in bulk, one worker at concurrency 50. */
export async function bullThroughput(ctx: BenchContext, count: number): Promise<number> {
  return withBull(ctx, 'tp', async (q) => {
    await q.addBulk(Array.from({ length: count }, (_, i) => ({ name: 'x', data: { i } })));
    let n = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const t0 = performance.now();
    const worker = new Worker(q.name, async () => {
      if (++n === count) done();
    }, { connection: redisFor(ctx), prefix: bareBullPrefix(ctx.namespace), concurrency: 50 });
    await finished;
    const rate = count / ((performance.now() - t0) / 1000);
    await worker.close();
    return rate;
  });
}

/** Redis bytes per waiting job with a minimal payload, `count` jobs. */
export async function bullBytesPerJob(ctx: BenchContext, count: number): Promise<number> {
  return withBull(ctx, 'mem', async (q, conn) => {
    const before = await usedMemory(conn);
    for (let i = 0; i < count; i += 1000) {
      await q.addBulk(Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ name: 'x', data: { i: i + j } })));
    }
    return ((await usedMemory(conn)) - before) / count;
  });
}

export async function usedMemory(conn: { info(section: string): Promise<string> }): Promise<number> {
  const info = await conn.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function withStream<T>(ctx: BenchContext, fn: (js: ReturnType<typeof jetstream>, subject: string) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: ctx.natsUrl });
  const jsm = await jetstreamManager(nc);
  const stream = bareStreamName(ctx.namespace, 'BARE');
  const subject = bareName(ctx, 'js');
  await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
  try {
    return await fn(jetstream(nc), subject);
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
}

/** Sequential acked publishes: ms each. */
export async function jsPublishMs(ctx: BenchContext, count: number): Promise<number> {
  return withStream(ctx, async (js, subject) => {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) await js.publish(`${subject}.x`, new TextEncoder().encode('{}'));
    return (performance.now() - t0) / count;
  });
}

/** Acked publishes per second with `concurrency` publishers in flight, and their p99 in ms. */
export async function jsPublishRate(ctx: BenchContext, count: number, concurrency: number): Promise<{ rate: number; p99: number }> {
  return withStream(ctx, async (js, subject) => {
    const times: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          next++;
          const s = performance.now();
          await js.publish(`${subject}.x`, new TextEncoder().encode('{"workflow":"x"}'));
          times.push(performance.now() - s);
        }
      }),
    );
    return { rate: count / ((performance.now() - t0) / 1000), p99: percentile(times, 99) };
  });
}

/** Publish → ordered-consumer delivery latency: p99 in ms. */
export async function jsDeliveryP99(ctx: BenchContext, count: number): Promise<number> {
  return withStream(ctx, async (js, subject) => {
    const consumer = await js.consumers.get(bareStreamName(ctx.namespace, 'BARE'), { filter_subjects: `${subject}.d`, deliver_policy: DeliverPolicy.New });
    const msgs = await consumer.consume();
    const lags: number[] = [];
    const got = (async () => {
      for await (const m of msgs) {
        lags.push(performance.now() - Number(new TextDecoder().decode(m.data)));
        if (lags.length >= count) break;
      }
    })();
    for (let i = 0; i < count; i++) {
      await js.publish(`${subject}.d`, new TextEncoder().encode(String(performance.now())));
      await new Promise((r) => setTimeout(r, 2));
    }
    await got;
    void AckPolicy;
    return percentile(lags, 99);
  });
}

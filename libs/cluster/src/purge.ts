/** Removes everything a namespace left in NATS and Redis: tests clean up after themselves with it. */
import { museNames } from '@muse/contracts';
import { JetStreamBus } from '@muse/messaging';
import { createRedis } from '@muse/queues';

export async function purgeNamespace(natsUrl: string, redisUrl: string, namespace: string): Promise<void> {
  const names = museNames(namespace);
  const bus = await JetStreamBus.connect({ url: natsUrl, names, name: 'muse-purge' });
  try {
    await bus.deleteStreams();
    // The `nats` artifact backend's Object Store bucket, if the namespace used one.
    await bus.jsm.streams.delete(`OBJ_${names.artifactBucket}`).catch(() => undefined);
  } finally {
    await bus.close();
  }
  const redis = createRedis(redisUrl);
  try {
    for (const pattern of [`${namespace}:*`, `mutex:${namespace}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    await redis.quit();
  }
}

/**
 * Builds the blob backend MUSE_ARTIFACT_BACKEND names, wrapped in metrics, behind
 * the Redis tier for small blobs (MUSE_ARTIFACT_REDIS_BLOB_BYTES; see redis-blob-tier.ts).
 * The NATS and S3 backends are imported only when chosen, so a store on the
 * local disk never loads the AWS SDK.
 */
import { join, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import { MuseError, type ArtifactStoreConfig, type MuseNames } from '@muse/contracts';
import type { BlobBackend } from './blob.backend.js';
import { BlobSpool } from './blob-spool.js';
import { BlobStore } from './blob.store.js';
import { MeteredBackend } from './metered.backend.js';
import { RedisBlobTier } from './redis-blob-tier.js';
import type { ArtifactStoreMetrics } from './artifact-store.metrics.js';

export async function openBlobBackend(
  c: ArtifactStoreConfig,
  names: MuseNames,
  nc: NatsConnection,
  redis: Redis,
  metrics: Pick<ArtifactStoreMetrics, 'backendSeconds'>,
): Promise<{ backend: BlobBackend; where: string; /** The largest blob the Redis tier keeps (0: no tier). */ redisBlobBytes: number }> {
  // Every backend stages uploads under MUSE_ARTIFACT_DIR/tmp (see blob-spool.ts).
  const spool = () => new BlobSpool(join(resolve(c.MUSE_ARTIFACT_DIR), 'tmp'), c.MUSE_ARTIFACT_MAX_BYTES, c.MUSE_ARTIFACT_STALE_TEMP_MS);
  let backend: BlobBackend;
  let where: string;
  switch (c.MUSE_ARTIFACT_BACKEND) {
    case 'local': {
      const local = new BlobStore(c.MUSE_ARTIFACT_DIR, { maxBytes: c.MUSE_ARTIFACT_MAX_BYTES, staleTempMs: c.MUSE_ARTIFACT_STALE_TEMP_MS });
      backend = local;
      where = local.root;
      break;
    }
    case 'nats': {
      const bucket = c.MUSE_ARTIFACT_NATS_BUCKET ?? names.artifactBucket;
      const { NatsObjectBackend } = await import('./nats-object.backend.js');
      backend = await NatsObjectBackend.open(nc, { bucket, replicas: c.MUSE_ARTIFACT_NATS_REPLICAS, spool: spool() });
      where = `nats object store ${bucket}`;
      break;
    }
    case 's3': {
      if (!c.MUSE_ARTIFACT_S3_BUCKET) {
        throw new MuseError('MUSE_ERR_CONFIG_INVALID', 'MUSE_ARTIFACT_S3_BUCKET is required when MUSE_ARTIFACT_BACKEND=s3');
      }
      const [{ S3Client }, { S3Backend }] = await Promise.all([import('@aws-sdk/client-s3'), import('./s3.backend.js')]);
      const client = new S3Client({
        region: c.MUSE_ARTIFACT_S3_REGION,
        forcePathStyle: c.MUSE_ARTIFACT_S3_FORCE_PATH_STYLE,
        ...(c.MUSE_ARTIFACT_S3_ENDPOINT ? { endpoint: c.MUSE_ARTIFACT_S3_ENDPOINT } : {}),
      });
      const prefix = c.MUSE_ARTIFACT_S3_PREFIX ?? `${names.namespace}/`;
      backend = new S3Backend({ client, bucket: c.MUSE_ARTIFACT_S3_BUCKET, prefix, spool: spool() });
      where = `s3://${c.MUSE_ARTIFACT_S3_BUCKET}/${prefix}`;
      break;
    }
  }
  const metered = new MeteredBackend(backend, metrics.backendSeconds);
  // Never past the size limit of every blob.
  const redisMax = Math.min(c.MUSE_ARTIFACT_REDIS_BLOB_BYTES, c.MUSE_ARTIFACT_MAX_BYTES);
  return redisMax > 0
    ? { backend: new RedisBlobTier(metered, redis, names, redisMax), where: `${where}; blobs up to ${redisMax} bytes in Redis`, redisBlobBytes: redisMax }
    : { backend: metered, where, redisBlobBytes: 0 };
}

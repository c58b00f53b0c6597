/**
 * The coordinator's own commits of small outputs, against the real Redis (REDIS_URL, default localhost), under a
 * namespace of its own that is deleted afterwards: what it commits, as the artifact store would, and what it leaves
 * to the store (undefined, nothing committed).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { ArtifactCommitRequest } from '@muse/contracts';
import { specRedis } from '@muse/queues/spec-redis';
import { ArtifactRepository, CommitPolicyReader, publishCommitPolicy } from '@muse/artifacts';
import { MuseMetrics } from '@muse/telemetry';
import { InlineArtifactCommits } from './inline-artifact-commits.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function inline(name: string, text: string | Buffer): ArtifactCommitRequest['artifacts'][number] {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return { name, digest: sha(bytes), size: bytes.length, mediaType: 'text/plain', content: bytes.toString('base64') };
}

describe('InlineArtifactCommits (real Redis)', () => {
  const { redis, names } = specRedis();
  const repo = new ArtifactRepository(redis, names);
  const metrics = new MuseMetrics('coordinator-spec');
  // No caching between the tests' policies.
  const commits = new InlineArtifactCommits({ repo, policy: new CommitPolicyReader(redis, names, 0), metrics });

  const request = (over: Partial<ArtifactCommitRequest> = {}): ArtifactCommitRequest => ({
    runId: 'run_a',
    project: 'default',
    stepId: 'plan',
    attempt: 1,
    agentId: 'agent-1',
    fencingToken: 5,
    artifacts: [inline('response.md', 'the plan'), inline('llm-call.json', '{"model":"x"}')],
    ...over,
  });
  const counted = async (outcome: string) => (await metrics.registry.getSingleMetric('muse_artifact_commits_total')!.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;

  test('until the artifact store has published its policy, every commit is left to it', async () => {
    assert.equal(await commits.commit(request({ runId: 'run_nopolicy' })), undefined);
    assert.deepEqual(await redis.zrange(names.runArtifactsKey('run_nopolicy'), '0', '-1'), []);
  });

  test('small outputs that rode in the report are committed as the store would: fenced, versioned, their blobs in Redis, a repeat is a replay', async () => {
    await publishCommitPolicy(redis, names, { redisBlobBytes: 2048, defaultTtlMs: 0 });
    const req = request();
    const res = await commits.commit(req);
    assert.ok(res?.ok, JSON.stringify(res));
    assert.deepEqual(res.artifacts.map((a) => [a.name, a.version, a.digest, a.size, a.mediaType]), req.artifacts.map((a) => [a.name, 1, a.digest, a.size, 'text/plain']));
    for (const a of req.artifacts) {
      assert.deepEqual(await redis.hgetBuffer(names.artifactRedisBlobsKey, a.digest), Buffer.from(a.content!, 'base64'), `${a.name}: its blob is in the Redis tier`);
      assert.notEqual(await redis.zscore(names.artifactBlobPendingKey, a.digest), null, `${a.name}: marked pending for GC, as an upload is`);
    }
    const meta = await repo.get(res.artifacts[0]!.id);
    assert.equal(meta?.producer.agentId, 'agent-1');
    assert.equal(meta?.expiresAt, undefined, 'kept forever: the policy keeps artifacts forever');
    assert.equal(await redis.get(names.artifactFenceKey('run_a')), '5', 'the run fence is raised');
    assert.equal(await counted('committed'), 1);

    const again = await commits.commit(req);
    assert.ok(again?.ok);
    assert.deepEqual(again.artifacts, res.artifacts, 'a redelivered report gets the same artifacts');
    assert.equal(await counted('replayed'), 1);
  });

  test('the retention is the workflow’s, else the store’s default', async () => {
    await publishCommitPolicy(redis, names, { redisBlobBytes: 2048, defaultTtlMs: 86_400_000 });
    const byDefault = await commits.commit(request({ runId: 'run_ttl', stepId: 'a' }));
    const byWorkflow = await commits.commit(request({ runId: 'run_ttl', stepId: 'b', ttlSeconds: 60 }));
    assert.ok(byDefault?.ok && byWorkflow?.ok);
    const ttl = async (id: string) => {
      const m = (await repo.get(id))!;
      return Date.parse(m.expiresAt!) - Date.parse(m.createdAt);
    };
    assert.equal(await ttl(byDefault.artifacts[0]!.id), 86_400_000);
    assert.equal(await ttl(byWorkflow.artifacts[0]!.id), 60_000);
  });

  test('what it cannot commit as the store would is left to the store, with nothing committed', async () => {
    await publishCommitPolicy(redis, names, { redisBlobBytes: 100, defaultTtlMs: 0 });
    const uploaded = { name: 'big.bin', digest: sha(Buffer.from('x')), size: 1, mediaType: 'application/octet-stream' };
    const lying = { ...inline('lie.txt', 'one thing'), digest: sha(Buffer.from('another')) };
    const cases: Array<[string, ArtifactCommitRequest['artifacts']]> = [
      ['an uploaded blob', [inline('response.md', 'fits'), uploaded]],
      ['a blob over the tier’s limit', [inline('response.md', 'fits'), inline('big.txt', randomBytes(101))]],
      ['content that does not match its digest', [lying]],
      ['an If-Match', [{ ...inline('plan.md', 'v2'), ifMatch: 1 }]],
      ['one name twice', [inline('a.txt', 'one'), inline('a.txt', 'two')]],
      ['an empty blob', [inline('empty.txt', '')]],
    ];
    for (const [i, [what, artifacts]] of cases.entries()) {
      const runId = `run_left_${i}`;
      assert.equal(await commits.commit(request({ runId, artifacts })), undefined, what);
      assert.deepEqual(await redis.zrange(names.runArtifactsKey(runId), '0', '-1'), [], `${what}: nothing committed`);
    }
    await publishCommitPolicy(redis, names, { redisBlobBytes: 0, defaultTtlMs: 0 });
    assert.equal(await commits.commit(request({ runId: 'run_notier' })), undefined, 'a store without a Redis tier commits everything itself');
  });

  test('a stale fencing token is left to the store, and nothing is written', async () => {
    await publishCommitPolicy(redis, names, { redisBlobBytes: 2048, defaultTtlMs: 0 });
    await redis.set(names.artifactFenceKey('run_stale'), '9');
    assert.equal(await commits.commit(request({ runId: 'run_stale', fencingToken: 8 })), undefined);
    assert.deepEqual(await redis.zrange(names.runArtifactsKey('run_stale'), '0', '-1'), []);
    assert.equal(await redis.get(names.artifactFenceKey('run_stale')), '9');
  });

  test('a drawing commit: only with the policy at hand and a commit it makes; it draws its token while the lock is its holder\'s, else touches nothing', async () => {
    await publishCommitPolicy(redis, names, { redisBlobBytes: 2048, defaultTtlMs: 0 });
    const { fencingToken: _none, ...req } = request({ runId: 'run_draw' });
    // This reader reads Redis for every commit (refresh 0): no policy at hand without a read, so no drawing commit.
    assert.equal(commits.drawing(req), undefined);
    const cached = new CommitPolicyReader(redis, names, 60_000);
    await cached.current();
    const drawing = new InlineArtifactCommits({ repo, policy: cached, metrics });
    assert.equal(drawing.drawing({ ...req, artifacts: [{ ...inline('plan.md', 'v2'), ifMatch: 1 }] }), undefined, 'an If-Match is the store\'s');

    const lock = { key: `mutex:${names.runLockKey('run_draw')}`, holder: 'holder-1', fence: names.runFenceKey('run_draw') };
    const commit = drawing.drawing(req)!;
    await redis.set(lock.key, 'someone-else');
    assert.deepEqual(await commit(lock), { held: false });
    assert.equal(await redis.get(lock.fence), null, 'no token drawn');
    assert.deepEqual(await redis.zrange(names.runArtifactsKey('run_draw'), '0', '-1'), []);

    await redis.set(lock.key, lock.holder);
    const before = await counted('committed');
    const drawn = await commit(lock);
    assert.ok(drawn.held && drawn.response?.ok, JSON.stringify(drawn));
    assert.equal(drawn.token, 1);
    assert.deepEqual(drawn.response.artifacts.map((a) => [a.name, a.version]), [['response.md', 1], ['llm-call.json', 1]]);
    assert.equal(await redis.get(names.artifactFenceKey('run_draw')), '1', 'the artifacts\' fence is the drawn token');
    assert.equal(await counted('committed'), before + 1, 'counted as any commit of the coordinator\'s');
    await redis.del(lock.key); // under redis-semaphore's prefix, outside the namespace the spec's cleanup removes
  });
});

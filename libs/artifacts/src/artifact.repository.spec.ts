/**
 * The fencing Lua script against the real Redis (REDIS_URL, default
 * localhost), under a namespace of its own that is deleted afterwards.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { specRedis } from '@muse/queues/spec-redis';
import { ArtifactRepository, ARTIFACT_ID_PATTERN, newArtifactId, splitAroundVersion, type CommitInput } from './artifact.repository.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;

function input(over: Partial<CommitInput> = {}): CommitInput {
  return {
    runId: 'run_1',
    project: 'default',
    stepId: 'build',
    attempt: 1,
    agentId: 'agent-1',
    fencingToken: 1,
    artifacts: [{ name: 'stdout.txt', digest: digest('a'), size: 3, mediaType: 'text/plain' }],
    ...over,
  };
}

describe('ArtifactRepository (fenced commit script, real Redis)', () => {
  const { redis, names } = specRedis();
  const repo = new ArtifactRepository(redis, names);

  /** A commit as after an upload: the blobs carry the pending mark an upload leaves (see blob-gc.service.ts). */
  const commit = async (i: CommitInput) => {
    for (const a of i.artifacts) await redis.zadd(names.artifactBlobPendingKey, Date.now(), a.digest);
    return repo.commit(i);
  };

  const runKeys = (runId: string) => redis.zrange(names.runArtifactsKey(runId), '0', '-1');

  test('a first commit creates version 1, stores metadata, indexes the run and raises the fence', async () => {
    const res = await commit(input({ runId: 'r-first', fencingToken: 3 }));
    assert.ok(res.ok);
    assert.equal(res.artifacts.length, 1);
    const { meta, created } = res.artifacts[0]!;
    assert.equal(created, true);
    assert.match(meta.id, ARTIFACT_ID_PATTERN);
    assert.equal(meta.version, 1);
    assert.equal(meta.name, 'stdout.txt');
    assert.deepEqual(meta.producer, { agentId: 'agent-1' });
    assert.deepEqual(await repo.get(meta.id), meta);
    assert.deepEqual(await runKeys('r-first'), [meta.id]);
    const score = await redis.zscore(names.runArtifactsKey('r-first'), meta.id);
    assert.equal(Number(score), Date.parse(meta.createdAt));
    assert.equal(await repo.highestToken('r-first'), 3);
  });

  test('an older token is rejected and writes nothing', async () => {
    const runId = 'r-stale';
    assert.ok((await commit(input({ runId, fencingToken: 5 }))).ok);
    const res = await commit(input({ runId, fencingToken: 4, attempt: 2 }));
    assert.deepEqual(res, { ok: false, stale: true, highestToken: 5 });
    assert.equal((await runKeys(runId)).length, 1);
    assert.equal(await redis.get(names.artifactVersionKey(runId, 'stdout.txt')), '1');
    assert.equal(await redis.get(repo.commitKey(runId, 'build', 2, 'stdout.txt')), null);
    assert.equal(await repo.highestToken(runId), 5);
  });

  test('an equal token is accepted, a newer one is accepted and becomes the fence', async () => {
    const runId = 'r-tokens';
    assert.ok((await commit(input({ runId, fencingToken: 7 }))).ok);
    const equal = await commit(input({ runId, fencingToken: 7, attempt: 2 }));
    assert.ok(equal.ok);
    assert.equal(equal.artifacts[0]!.meta.version, 2);
    const newer = await commit(input({ runId, fencingToken: 8, attempt: 3 }));
    assert.ok(newer.ok);
    assert.equal(newer.artifacts[0]!.meta.version, 3);
    assert.equal(await repo.highestToken(runId), 8);
    assert.equal((await commit(input({ runId, fencingToken: 7, attempt: 4 }))).ok, false);
  });

  test('the same (run, step, attempt, name) committed again returns the first artifact', async () => {
    const runId = 'r-idem';
    const first = await commit(input({ runId, fencingToken: 1 }));
    const again = await commit(input({ runId, fencingToken: 1 }));
    // A coordinator that took over the run retries with its newer token.
    const takeover = await commit(input({ runId, fencingToken: 2 }));
    assert.ok(first.ok && again.ok && takeover.ok);
    assert.equal(again.artifacts[0]!.created, false);
    assert.equal(takeover.artifacts[0]!.created, false);
    assert.deepEqual(again.artifacts[0]!.meta, first.artifacts[0]!.meta);
    assert.deepEqual(takeover.artifacts[0]!.meta, first.artifacts[0]!.meta);
    assert.equal((await runKeys(runId)).length, 1);
    assert.equal(await redis.get(names.artifactVersionKey(runId, 'stdout.txt')), '1');
  });

  test('the commit key holds the artifact id, and a repeat reads the metadata from the artifact: one copy of it', async () => {
    const runId = 'r-one-copy';
    const first = await commit(input({ runId }));
    assert.ok(first.ok);
    const { meta } = first.artifacts[0]!;
    assert.equal(await redis.get(repo.commitKey(runId, 'build', 1, 'stdout.txt')), meta.id);
    const again = await commit(input({ runId }));
    assert.ok(again.ok);
    assert.deepEqual(again.artifacts[0], { created: false, meta });
  });

  test('a commit key written before, holding the metadata itself, still answers a repeat', async () => {
    const runId = 'r-old-key';
    const first = await commit(input({ runId }));
    assert.ok(first.ok);
    const { meta } = first.artifacts[0]!;
    const key = repo.commitKey(runId, 'build', 1, 'stdout.txt');
    await redis.set(key, JSON.stringify(meta));
    const again = await commit(input({ runId }));
    assert.ok(again.ok);
    assert.deepEqual(again.artifacts[0], { created: false, meta });
    assert.equal(await redis.get(key), JSON.stringify(meta));
  });

  test('a commit key whose artifact is gone counts as never committed: the repeat commits anew, checked as a first commit', async () => {
    const runId = 'r-dangling';
    const first = await commit(input({ runId }));
    assert.ok(first.ok);
    await redis.del(names.artifactKey(first.artifacts[0]!.meta.id));
    const again = await commit(input({ runId }));
    assert.ok(again.ok);
    assert.equal(again.artifacts[0]!.created, true);
    assert.equal(again.artifacts[0]!.meta.version, 2);
    assert.notEqual(again.artifacts[0]!.meta.id, first.artifacts[0]!.meta.id);
    assert.equal(await redis.get(repo.commitKey(runId, 'build', 1, 'stdout.txt')), again.artifacts[0]!.meta.id);
    // Checked as a first commit is: an If-Match that does not hold refuses it.
    await redis.del(names.artifactKey(again.artifacts[0]!.meta.id));
    const conflicting = await commit(input({ runId, artifacts: [{ name: 'stdout.txt', digest: digest('a'), size: 3, mediaType: 'text/plain', ifMatch: 1 }] }));
    assert.deepEqual(conflicting, { ok: false, conflict: true, name: 'stdout.txt', latest: 2 });
  });

  test('concurrent commits of the same artifact agree on one id', async () => {
    const runId = 'r-race';
    const results = await Promise.all(Array.from({ length: 20 }, () => commit(input({ runId }))));
    const ids = new Set(results.map((r) => (r.ok ? r.artifacts[0]!.meta.id : 'stale')));
    assert.equal(ids.size, 1);
    assert.equal(results.filter((r) => r.ok && r.artifacts[0]!.created).length, 1);
    assert.equal((await runKeys(runId)).length, 1);
  });

  test('several artifacts come back in request order, versions counted per name', async () => {
    const runId = 'r-multi';
    await commit(input({ runId, artifacts: [{ name: 'b.txt', digest: digest('b'), size: 1, mediaType: 'text/plain' }] }));
    const res = await commit(
      input({
        runId,
        attempt: 2,
        artifacts: [
          { name: 'a.txt', digest: digest('a'), size: 1, mediaType: 'text/plain' },
          { name: 'b.txt', digest: digest('b'), size: 1, mediaType: 'text/plain' },
          { name: 'c.json', digest: digest('c'), size: 1, mediaType: 'application/json' },
        ],
      }),
    );
    assert.ok(res.ok);
    assert.deepEqual(res.artifacts.map((a) => [a.meta.name, a.meta.version]), [['a.txt', 1], ['b.txt', 2], ['c.json', 1]]);
    assert.equal((await runKeys(runId)).length, 4);
  });

  test('names with quotes, slashes, colons and non-ASCII survive the JSON round trip', async () => {
    const name = 'out/"weird": naïve ✓.md';
    const res = await commit(input({ runId: 'r-json', artifacts: [{ name, digest: digest('d'), size: 12345678901, mediaType: 'text/markdown' }] }));
    assert.ok(res.ok);
    const meta = res.artifacts[0]!.meta;
    assert.equal(meta.name, name);
    assert.equal(meta.size, 12345678901);
    assert.deepEqual(await repo.get(meta.id), meta);
  });

  test('an empty commit still fences', async () => {
    const res = await commit(input({ runId: 'r-empty', fencingToken: 9, artifacts: [] }));
    assert.deepEqual(res, { ok: true, artifacts: [], stored: [] });
    assert.equal(await repo.highestToken('r-empty'), 9);
  });

  test('get returns null for unknown or malformed ids', async () => {
    assert.equal(await repo.get('art_doesnotexist0'), null);
    assert.equal(await repo.get('../../etc'), null);
  });

  test('If-Match: the commit lands only while the name is at that version (0 = new), and a replay skips the check', async () => {
    const item = (ifMatch: number) => [{ name: 'plan.md', digest: digest('c'), size: 3, mediaType: 'text/markdown', ifMatch }];
    const first = await commit(input({ runId: 'r-im', stepId: 's1', artifacts: item(0) }));
    assert.ok(first.ok);
    assert.equal(first.artifacts[0]!.meta.version, 1);
    const clash = await commit(input({ runId: 'r-im', stepId: 's2', artifacts: item(0) }));
    assert.deepEqual(clash, { ok: false, conflict: true, name: 'plan.md', latest: 1 });
    const second = await commit(input({ runId: 'r-im', stepId: 's2', artifacts: item(1) }));
    assert.ok(second.ok);
    assert.equal(second.artifacts[0]!.meta.version, 2);
    // The same (run, step, attempt, name) again: the first answer, not a 412.
    const replay = await commit(input({ runId: 'r-im', stepId: 's2', artifacts: item(1) }));
    assert.ok(replay.ok);
    assert.equal(replay.artifacts[0]!.created, false);
    assert.equal(await repo.latestVersion('r-im', 'plan.md'), 2);
  });

  test('a conflict anywhere in a commit writes nothing, not even the fence', async () => {
    await commit(input({ runId: 'r-atomic', fencingToken: 1, artifacts: [{ name: 'a', digest: digest('d'), size: 1, mediaType: 'text/plain' }] }));
    const res = await commit(input({
      runId: 'r-atomic', stepId: 'other', fencingToken: 5,
      artifacts: [{ name: 'b', digest: digest('d'), size: 1, mediaType: 'text/plain' }, { name: 'a', digest: digest('d'), size: 1, mediaType: 'text/plain', ifMatch: 7 }],
    }));
    assert.equal(res.ok, false);
    assert.equal(await repo.highestToken('r-atomic'), 1);
    assert.equal(await repo.latestVersion('r-atomic', 'b'), 0);
  });

  test('a blob no upload marked pending and nothing references is refused (GC may have taken it)', async () => {
    const res = await repo.commit(input({ runId: 'r-unmarked', artifacts: [{ name: 'x', digest: digest('9'), size: 1, mediaType: 'text/plain' }] }));
    assert.deepEqual(res, { ok: false, collecting: true, digest: digest('9') });
  });

  test('commits count blob references; retention removes expired artifacts and drops their references', async () => {
    const d = digest('8');
    const res = await commit(input({ runId: 'r-ttl', ttlMs: 1000, artifacts: [{ name: 'out', digest: d, size: 1, mediaType: 'text/plain', tool: 'shell', schema: 'muse.shell-output/v1' }] }));
    assert.ok(res.ok);
    const meta = res.artifacts[0]!.meta;
    assert.deepEqual(meta.producer, { agentId: 'agent-1', tool: 'shell' });
    assert.equal(meta.schema, 'muse.shell-output/v1');
    assert.equal(Date.parse(meta.expiresAt!) - Date.parse(meta.createdAt), 1000);
    assert.equal(await redis.hget(names.artifactBlobRefsKey, d), '1');
    assert.deepEqual(await repo.expireDue(Date.parse(meta.createdAt) + 999), []);
    const gone = await repo.expireDue(Date.parse(meta.createdAt) + 1000);
    assert.deepEqual(gone.map((m) => m.id), [meta.id]);
    assert.equal(await repo.get(meta.id), null);
    assert.deepEqual(await runKeys('r-ttl'), []);
    assert.equal(await redis.hget(names.artifactBlobRefsKey, d), null);
  });

  test('a drawing commit draws its token and commits only while the run lock holds its holder; else it touches nothing', async () => {
    const lock = { key: `mutex:${names.runLockKey('r-draw')}`, holder: 'holder-1', fence: names.runFenceKey('r-draw') };
    const bytes = Buffer.from('inline output');
    const { fencingToken: _none, ...unfenced } = input({
      runId: 'r-draw',
      artifacts: [{ name: 'out.txt', digest: digest('c'), size: bytes.length, mediaType: 'text/plain' }],
      redisBlobs: [{ digest: digest('c'), bytes }],
    });
    await redis.set(lock.fence, '6');
    await redis.set(lock.key, 'someone-else');
    assert.deepEqual(await repo.commitDrawing(unfenced, lock), { held: false });
    assert.equal(await redis.get(lock.fence), '6', 'no token drawn');
    assert.deepEqual(await runKeys('r-draw'), [], 'nothing committed');
    assert.equal(await redis.hget(names.artifactRedisBlobsKey, digest('c')), null, 'no blob written');
    assert.equal(await repo.highestToken('r-draw'), 0);

    await redis.set(lock.key, lock.holder);
    const drawn = await repo.commitDrawing(unfenced, lock);
    assert.ok(drawn.held);
    assert.equal(drawn.token, 7, 'the counter bumped once');
    assert.ok(drawn.result.ok);
    assert.deepEqual(drawn.result.stored, [true]);
    assert.equal(drawn.result.artifacts[0]!.meta.version, 1);
    assert.equal(drawn.result.artifacts[0]!.meta.name, 'out.txt');
    assert.equal(await redis.get(lock.fence), '7');
    assert.equal(await repo.highestToken('r-draw'), 7, 'the artifacts\' fence is the drawn token');
    assert.deepEqual(await redis.hgetBuffer(names.artifactRedisBlobsKey, digest('c')), bytes, 'the blob that came inside, in the tier');
    // A holder before it (token 6) is now stale, as after any newer holder's commit.
    const stale = await commit(input({ runId: 'r-draw', fencingToken: 6, artifacts: [{ name: 'late.txt', digest: digest('d'), size: 1, mediaType: 'text/plain' }] }));
    assert.ok(!stale.ok && 'stale' in stale && stale.highestToken === 7);
    await redis.del(lock.key); // under redis-semaphore's prefix, outside the namespace the spec's cleanup removes
  });
});

describe('artifact ids and metadata JSON', () => {
  test('ids are art_ and 20 characters of [a-z0-9]', () => {
    for (let i = 0; i < 200; i++) assert.match(newArtifactId(), /^art_[a-z0-9]{20}$/);
  });

  test('splitAroundVersion joins into the metadata with the version', () => {
    const { head, tail } = splitAroundVersion({
      id: 'art_x', name: 'n', digest: digest('e'), size: 1, mediaType: 'text/plain', project: 'p', runId: 'r',
      stepId: 's', attempt: 1, producer: { agentId: 'a' }, createdAt: 't',
    });
    assert.equal(JSON.parse(`${head}42${tail}`).version, 42);
  });
});

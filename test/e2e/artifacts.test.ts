/**
 * The artifact store end to end, on the real NATS and Redis, each part with
 * the artifact-store as its own OS process (the lineage part with a whole
 * cluster): fenced writers, a SIGKILL during 100 concurrent 10 MiB uploads,
 * dedup, a 1 GiB upload and download with the store under 100 MiB resident
 * (with throughput figures against a plain file copy on the same disk), GC
 * under concurrent uploads, the NATS Object Store backend, and the lineage of
 * a 3-step run through the gateway. Also: the Dockerfile's entrypoint runs
 * every service with the V8 flags the cluster gives it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { purgeNamespace, REPO_ROOT, ServiceProcess } from '@muse/cluster';
import { museNames, SERVICE_NAMES, type ArtifactLineage, type ArtifactMeta, type ArtifactRef } from '@muse/contracts';
import { http, NATS_URL, REDIS_URL, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const MiB = 1024 * 1024;

/** One artifact-store process under a namespace and data folder of its own. */
class StoreUnderTest {
  readonly namespace = `t-${randomBytes(5).toString('hex')}`;
  readonly dataDir = mkdtempSync(join(tmpdir(), `muse-${this.namespace}-`));
  proc!: ServiceProcess;

  constructor(private readonly env: Record<string, string> = {}) {}

  get url(): string {
    return this.proc.url;
  }

  async start(): Promise<void> {
    this.proc = new ServiceProcess({
      service: 'artifact-store',
      env: {
        NATS_URL,
        REDIS_URL,
        MUSE_NAMESPACE: this.namespace,
        MUSE_ARTIFACT_DIR: join(this.dataDir, 'artifacts'),
        ARTIFACT_STORE_PORT: '0',
        LOG_LEVEL: 'warn',
        ...this.env,
      },
      logFile: join(this.dataDir, 'logs', 'artifact-store.log'),
    });
    await this.proc.start();
    await this.proc.waitReady();
  }

  async stop(): Promise<void> {
    if (this.proc?.running) await this.proc.stop();
    await purgeNamespace(NATS_URL, REDIS_URL, this.namespace);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Resident memory of the store process, in bytes (from /proc). */
  rss(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  }

  /** The sum of a metric's samples whose labels include `labels` (e.g. `dedup="true"`). */
  async metric(name: string, labels = ''): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (m && m[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
    }
    return sum;
  }

  async blobFiles(): Promise<string[]> {
    const root = join(this.dataDir, 'artifacts', 'blobs', 'sha256');
    const out: string[] = [];
    for (const shard of await readdir(root).catch(() => [] as string[])) for (const f of await readdir(join(root, shard))) out.push(join(root, shard, f));
    return out;
  }

  async tempFiles(): Promise<string[]> {
    return (await readdir(join(this.dataDir, 'artifacts', 'tmp')).catch(() => [] as string[])).filter((f) => f.endsWith('.part'));
  }
}

/**
 * `size` bytes made on the fly (never held): a random 1 MiB block, each
 * chunk stamped with `seed` and its index so every upload is distinct. The
 * digest is known once the stream has been read to the end.
 */
function generated(seed: string, size: number, chunk = MiB): { stream: Readable; digest: () => string } {
  const block = randomBytes(Math.min(chunk, Math.max(size, 1)));
  const hash = createHash('sha256');
  let sent = 0;
  let i = 0;
  const stream = new Readable({
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, size - sent);
      const c = Buffer.from(block.subarray(0, n));
      c.write(`${seed}:${i++}:`.slice(0, n), 0);
      hash.update(c);
      sent += n;
      this.push(c);
    },
  });
  let digest: string | undefined;
  return { stream, digest: () => (digest ??= `sha256:${hash.digest('hex')}`) };
}

interface Write {
  runId: string;
  name: string;
  token: number;
  step?: string;
  ifMatch?: number;
  body: Readable | Buffer | string;
  mediaType?: string;
}

async function namedWrite(base: string, w: Write): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {
    'x-muse-fencing-token': String(w.token),
    'x-muse-step': w.step ?? 'build',
    'content-type': w.mediaType ?? 'application/octet-stream',
  };
  if (w.ifMatch !== undefined) headers['if-match'] = String(w.ifMatch);
  const body = w.body instanceof Readable ? (Readable.toWeb(w.body) as ReadableStream) : w.body;
  const res = await fetch(`${base}/internal/v1/runs/${w.runId}/artifacts/${encodeURIComponent(w.name)}`, {
    method: 'PUT',
    headers,
    body,
    ...(w.body instanceof Readable ? { duplex: 'half' } : {}),
  } as RequestInit);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Downloads an artifact's content, hashing it as it streams; never holds it. */
async function download(base: string, id: string): Promise<{ status: number; digest: string; size: number }> {
  const res = await fetch(`${base}/v1/artifacts/${id}/content`);
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(c);
    size += c.length;
  }
  return { status: res.status, digest: `sha256:${hash.digest('hex')}`, size };
}

describe('artifact store: fencing, If-Match, dedup (one store process)', { timeout: 120_000 }, () => {
  const s = new StoreUnderTest();
  before(() => s.start());
  after(() => s.stop());

  test('two writers for one run with interleaved tokens: only the newest token’s writes land', async () => {
    const runId = 'run_fence';
    const results: Array<{ writer: string; i: number; status: number }> = [];
    // A holds token 1, B token 2; they write alternately, A first.
    for (let i = 0; i < 6; i++) {
      for (const [writer, token] of [['a', 1], ['b', 2]] as const) {
        const r = await namedWrite(s.url, { runId, name: `${writer}-${i}.txt`, token, body: `${writer} wrote ${i}` });
        results.push({ writer, i, status: r.status });
        if (r.status !== 201) assert.equal(r.body.error.code, 'MUSE_ERR_ARTIFACT_STALE_TOKEN');
      }
    }
    // A's first write landed before B existed; every later A write was refused; all of B's landed.
    assert.deepEqual(results.filter((r) => r.writer === 'a').map((r) => r.status), [201, 409, 409, 409, 409, 409]);
    assert.deepEqual(results.filter((r) => r.writer === 'b').map((r) => r.status), [201, 201, 201, 201, 201, 201]);

    // The same race, concurrently: 20 writes each, all at once.
    const race = await Promise.all(
      Array.from({ length: 40 }, (_, i) => namedWrite(s.url, { runId, name: `race-${i}`, token: i % 2 === 0 ? 2 : 3, body: `race ${i}` }).then((r) => ({ i, ...r }))),
    );
    // Once token 3 landed, no token-2 write may land after it: every 201 for token 2 was committed before the fence moved.
    const landed3 = race.filter((r) => r.i % 2 === 1);
    assert.ok(landed3.every((r) => r.status === 201), 'the newest token always lands');
    for (const r of race.filter((x) => x.i % 2 === 0)) assert.ok(r.status === 201 || r.body.error.code === 'MUSE_ERR_ARTIFACT_STALE_TOKEN');
    const redis = new Redis(REDIS_URL);
    try {
      const names = museNames(s.namespace);
      const ids = await redis.zrange(names.runArtifactsKey(runId), '0', '-1', 'WITHSCORES');
      const metas = await Promise.all(
        ids.filter((_, i) => i % 2 === 0).map(async (id) => JSON.parse((await redis.get(names.artifactKey(id)))!) as ArtifactMeta),
      );
      // Writers a (token 1) never landed after b's first write; stale token-2 writes never appear.
      assert.deepEqual(metas.filter((m) => m.name.startsWith('a-')).map((m) => m.name), ['a-0.txt']);
      assert.equal(metas.filter((m) => m.name.startsWith('race-')).length, race.filter((r) => r.status === 201).length);
      assert.equal(await redis.get(names.artifactFenceKey(runId)), '3');
    } finally {
      redis.disconnect();
    }
    const stale = results.filter((r) => r.status === 409).length + race.filter((r) => r.status === 409).length;
    assert.equal(await s.metric('muse_artifact_stale_token_rejections_total'), stale);
  });

  test('If-Match on a name: 412 on conflict, 201 on the latest version', async () => {
    const runId = 'run_ifmatch';
    const w = (ifMatch: number | undefined, body: string) => namedWrite(s.url, { runId, name: 'plan.md', token: 1, ifMatch, body });
    const v1 = await w(0, 'first');
    assert.equal(v1.status, 201);
    assert.equal(v1.body.version, 1);
    const clash = await w(0, 'second (thinks the name is new)');
    assert.equal(clash.status, 412);
    assert.equal(clash.body.error.code, 'MUSE_ERR_ARTIFACT_VERSION_CONFLICT');
    assert.equal(clash.body.error.details.latestVersion, 1);
    const v2 = await w(1, 'second');
    assert.equal(v2.status, 201);
    assert.equal(v2.body.version, 2);
    assert.equal((await w(undefined, 'third, unconditional')).body.version, 3);
    const bad = await namedWrite(s.url, { runId, name: 'plan.md', token: 1, body: 'x', ifMatch: -1 });
    assert.equal(bad.status, 400);
  });

  test('the same content twice is stored once', async () => {
    const before = (await s.blobFiles()).length;
    const bytes = randomBytes(256 * 1024);
    const a = await namedWrite(s.url, { runId: 'run_dedup_1', name: 'same.bin', token: 1, body: bytes });
    const b = await namedWrite(s.url, { runId: 'run_dedup_2', name: 'copy.bin', token: 1, body: bytes });
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    assert.notEqual(a.body.id, b.body.id);
    assert.equal(a.body.digest, b.body.digest);
    assert.equal((await s.blobFiles()).length, before + 1);
    assert.equal(await s.metric('muse_artifact_blobs_written_total', 'dedup="true"'), 1);
    for (const id of [a.body.id, b.body.id]) {
      const d = await download(s.url, id);
      assert.equal(d.digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    }
  });

  test('over the size limit: 413 with a clear code', async () => {
    const big = new StoreUnderTest({ MUSE_ARTIFACT_MAX_BYTES: String(MiB) });
    await big.start();
    try {
      const r = await namedWrite(big.url, { runId: 'run_413', name: 'big', token: 1, body: generated('big', 2 * MiB).stream });
      assert.equal(r.status, 413);
      assert.equal(r.body.error.code, 'MUSE_ERR_REQUEST_TOO_LARGE');
    } finally {
      await big.stop();
    }
  });
});

describe('artifact store: SIGKILL during 100 concurrent 10 MiB uploads', { timeout: 300_000 }, () => {
  // Temp files of the killed uploads are stale 1 s after the kill (default 10 min, for shared volumes).
  const s = new StoreUnderTest({ MUSE_ARTIFACT_STALE_TEMP_MS: '1000' });
  before(() => s.start());
  after(() => s.stop());

  test('leaves no partial artifact, and every acknowledged upload is readable with its checksum', async () => {
    const runId = 'run_crash';
    const acked: Array<{ id: string; digest: string }> = [];
    let settled = 0;
    const uploads = Array.from({ length: 100 }, async (_, i) => {
      const g = generated(`crash-${i}`, 10 * MiB);
      try {
        const r = await namedWrite(s.url, { runId, name: `part-${i}.bin`, token: 1, body: g.stream });
        if (r.status === 201) {
          assert.equal(r.body.digest, g.digest(), 'the store hashed what was sent');
          acked.push({ id: r.body.id, digest: r.body.digest });
        }
      } catch {
        // The connection died with the store: not acknowledged.
      } finally {
        settled++;
      }
    });
    // Kill once some uploads are acknowledged and others are mid-flight.
    const deadline = Date.now() + 60_000;
    while (acked.length < 10 && settled < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await s.proc.kill('SIGKILL');
    await Promise.all(uploads);
    assert.ok(acked.length >= 10, `${acked.length} uploads acknowledged before the kill`);
    assert.ok(acked.length < 100, 'some uploads were still in flight at the kill');
    const leftover = (await s.tempFiles()).length;

    await new Promise((r) => setTimeout(r, 1_200));
    await s.start();
    assert.deepEqual(await s.tempFiles(), [], `the restart removed the ${leftover} temp files the kill left`);
    console.log(`# SIGKILL with 100 uploads of 10 MiB in flight: ${acked.length} acknowledged, ${leftover} temp files left by the kill (removed at restart)`);

    // Every acknowledged upload reads back whole, with its checksum.
    for (const a of acked) {
      const d = await download(s.url, a.id);
      assert.equal(d.status, 200);
      assert.equal(d.digest, a.digest);
      assert.equal(d.size, 10 * MiB);
    }
    // No partial artifact: every committed artifact of the run has a whole blob, and every blob file is named by its content.
    const redis = new Redis(REDIS_URL);
    try {
      const names = museNames(s.namespace);
      const ids = await redis.zrange(names.runArtifactsKey(runId), '0', '-1');
      assert.ok(ids.length >= acked.length);
      for (const id of ids) {
        const meta = JSON.parse((await redis.get(names.artifactKey(id)))!) as ArtifactMeta;
        assert.equal(meta.size, 10 * MiB);
        assert.equal((await download(s.url, id)).digest, meta.digest);
      }
    } finally {
      redis.disconnect();
    }
    for (const file of await s.blobFiles()) {
      const hash = createHash('sha256');
      await pipeline(createReadStream(file), hash);
      assert.ok(file.endsWith(hash.digest('hex')), `${file} holds exactly the bytes its name says`);
    }
  });
});

describe('artifact store: 1 GiB upload and download in bounded memory', { timeout: 300_000 }, () => {
  const s = new StoreUnderTest();
  before(() => s.start());
  after(() => s.stop());

  test('the store stays under 100 MiB resident throughout, and throughput is reported against a plain file copy', async () => {
    const size = 1024 * MiB;
    // The whole process, idle or not: NestJS, Fastify, ioredis, NATS and Node's own ~45 MiB come to ~83 MiB after
    // start (its start-up garbage collected before it listens, libs/telemetry's compactAfterStartup) and once idle (on
    // the local backend the store runs without V8's optimizing compilers, see SERVICE_EXTRA_NODE_FLAGS; no ICU date
    // formatter is built at start, see libs/telemetry/src/boot.ts); a transfer adds a few MiB at most
    // (upload chunks freed once written, downloads read into a ring of reused buffers).
    const limit = 100 * MiB;
    const baseline = s.rss();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, s.rss())), 25);
    try {
      const g = generated('gib', size);
      let t0 = process.hrtime.bigint();
      const up = await namedWrite(s.url, { runId: 'run_gib', name: 'big.bin', token: 1, body: g.stream });
      const upSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      assert.equal(up.status, 201, JSON.stringify(up.body));
      assert.equal(up.body.size, size);
      assert.equal(up.body.digest, g.digest());

      t0 = process.hrtime.bigint();
      const down = await download(s.url, up.body.id);
      const downSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      assert.equal(down.size, size);
      assert.equal(down.digest, up.body.digest);
      clearInterval(sampler);
      peak = Math.max(peak, s.rss());
      const flags = readFileSync(`/proc/${s.proc.pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--'));
      assert.ok(
        peak < limit,
        `artifact-store peak RSS ${(peak / MiB).toFixed(1)} MiB (idle ${(baseline / MiB).toFixed(1)} MiB, +${((peak - baseline) / MiB).toFixed(1)} MiB; flags ${flags.join(' ')})`,
      );

      // The baseline: the same bytes copied file to file on the same disk, fsynced like a blob.
      const [blob] = await s.blobFiles();
      const copy = join(s.dataDir, 'plain-copy.bin');
      t0 = process.hrtime.bigint();
      await pipeline(createReadStream(blob!), createWriteStream(copy));
      const fh = await open(copy, 'r+');
      await fh.sync();
      await fh.close();
      const copySeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      assert.equal((await stat(copy)).size, size);
      const mibs = (sec: number) => (size / MiB / sec).toFixed(0);
      console.log(
        `# artifact throughput, 1 GiB on one disk: upload ${mibs(upSeconds)} MiB/s (${upSeconds.toFixed(1)} s), ` +
          `download ${mibs(downSeconds)} MiB/s (${downSeconds.toFixed(1)} s), plain file copy ${mibs(copySeconds)} MiB/s (${copySeconds.toFixed(1)} s); ` +
          `artifact-store RSS idle ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB (+${((peak - baseline) / MiB).toFixed(1)} MiB)`,
      );
    } finally {
      clearInterval(sampler);
    }
  });
});

describe('the Dockerfile entrypoint', () => {
  test('runs every service with the V8 flags the cluster gives it (ServiceProcess.nodeFlags)', () => {
    const line = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('ENTRYPOINT '));
    assert.ok(line, 'Dockerfile: no ENTRYPOINT');
    const [sh, dashC, script, arg0] = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
    assert.deepEqual([sh, dashC], ['/bin/sh', '-c']);
    // The entrypoint's own shell line, with a `node` on PATH that prints the arguments it got.
    const bin = mkdtempSync(join(tmpdir(), 'muse-entrypoint-'));
    try {
      writeFileSync(join(bin, 'node'), '#!/bin/sh\nprintf "%s\\n" "$@"\n');
      chmodSync(join(bin, 'node'), 0o755);
      // The artifact store's flags depend on its backend; no other service's do.
      for (const backend of [undefined, 'local', 'nats', 's3']) {
        for (const service of SERVICE_NAMES) {
          const env: Record<string, string> = backend ? { MUSE_ARTIFACT_BACKEND: backend } : {};
          const out = execFileSync('/bin/sh', ['-c', script!, arg0!, '--extra-arg'], { env: { PATH: `${bin}:/usr/bin:/bin`, SERVICE: service, ...env }, encoding: 'utf8' });
          const flags = new ServiceProcess({ service, env: { MUSE_ARTIFACT_BACKEND: backend ?? '' } }).nodeFlags;
          const expected = ['--enable-source-maps', ...flags, `apps/${service}/dist/main.js`, '--extra-arg'];
          assert.deepEqual(out.trimEnd().split('\n'), expected, `${service} (MUSE_ARTIFACT_BACKEND=${backend ?? 'unset'}): the Dockerfile runs node with other flags than libs/cluster`);
        }
      }
      assert.ok(new ServiceProcess({ service: 'artifact-store', env: { MUSE_ARTIFACT_BACKEND: '' } }).nodeFlags.includes('--no-opt'));
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe('artifact store: GC under concurrent uploads', { timeout: 120_000 }, () => {
  // GC every 50 ms with a 1 ms grace: only the pending-mark and claim protocol keeps in-flight uploads safe.
  const s = new StoreUnderTest({ MUSE_ARTIFACT_GC_INTERVAL_MS: '50', MUSE_ARTIFACT_GC_GRACE_MS: '1' });
  before(() => s.start());
  after(() => s.stop());

  test('never deletes a referenced blob while uploads run, and collects unreferenced ones', async () => {
    // Blobs uploaded and never committed: GC's to take.
    const orphans: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${s.url}/internal/v1/blobs`, { method: 'PUT', body: randomBytes(4096) });
      orphans.push(((await res.json()) as { digest: string }).digest);
    }
    // A few contents written again and again by 8 writers for a while: commits, dedups and collection interleave.
    const contents = Array.from({ length: 6 }, () => randomBytes(64 * 1024));
    const committed: Array<{ id: string; digest: string }> = [];
    let refused = 0;
    const until = Date.now() + 4_000;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; Date.now() < until; i++) {
          const r = await namedWrite(s.url, { runId: `run_gc_${w}`, name: `n-${i}`, token: 1, body: contents[(w + i) % contents.length]! });
          if (r.status === 201) committed.push({ id: r.body.id, digest: r.body.digest });
          else {
            // The only refusal the protocol allows: "GC had it; upload again" — never a lost blob.
            assert.equal(r.body.error.code, 'MUSE_ERR_ARTIFACT_BLOB_COLLECTING', JSON.stringify(r.body));
            refused++;
          }
        }
      }),
    );
    assert.ok(committed.length > 50, `${committed.length} commits (${refused} refused)`);
    assert.ok((await s.metric('muse_artifact_gc_runs_total', 'outcome="ok"')) > 10, 'GC ran all along');
    for (const c of committed) {
      const d = await download(s.url, c.id);
      assert.equal(d.status, 200, `artifact ${c.id} lost its blob`);
      assert.equal(d.digest, c.digest);
    }
    const left = new Set((await s.blobFiles()).map((f) => `sha256:${f.split('/').at(-1)}`));
    for (const o of orphans) assert.ok(!left.has(o), `unreferenced blob ${o} was collected`);
    assert.ok((await s.metric('muse_artifact_gc_deleted_blobs_total')) >= orphans.length);
  });
});

describe('artifact store on the NATS Object Store backend', { timeout: 120_000 }, () => {
  // A grace period longer than any upload here: an upload slower than the grace loses its pending mark by design.
  const s = new StoreUnderTest({ MUSE_ARTIFACT_BACKEND: 'nats', MUSE_ARTIFACT_GC_INTERVAL_MS: '200', MUSE_ARTIFACT_GC_GRACE_MS: '1500' });
  before(() => s.start());
  after(() => s.stop());

  test('named writes, verified and ranged reads, dedup and GC work the same on NATS', async () => {
    const g = generated('nats', 3 * MiB + 17);
    const a = await namedWrite(s.url, { runId: 'run_nats', name: 'big.bin', token: 1, body: g.stream });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal(a.body.digest, g.digest());
    const d = await download(s.url, a.body.id);
    assert.deepEqual([d.status, d.digest, d.size], [200, g.digest(), 3 * MiB + 17]);
    const ranged = await fetch(`${s.url}/v1/artifacts/${a.body.id}/content`, { headers: { range: `bytes=${MiB - 5}-${MiB + 4}` } });
    assert.equal(ranged.status, 206);
    assert.equal((await ranged.arrayBuffer()).byteLength, 10);

    const bytes = randomBytes(1000);
    const x = await namedWrite(s.url, { runId: 'run_nats', name: 'x', token: 1, body: bytes });
    const y = await namedWrite(s.url, { runId: 'run_nats_2', name: 'y', token: 1, body: bytes });
    assert.equal(x.body.digest, y.body.digest);
    assert.equal(await s.metric('muse_artifact_blobs_written_total', 'dedup="true"'), 1);
    assert.equal(await s.metric('muse_artifact_backend_seconds_count', 'backend="nats",op="put",outcome="ok"'), 3);

    const orphan = await fetch(`${s.url}/internal/v1/blobs`, { method: 'PUT', body: randomBytes(500) });
    assert.equal(orphan.status, 201);
    const deadline = Date.now() + 10_000;
    while ((await s.metric('muse_artifact_gc_deleted_blobs_total')) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await s.metric('muse_artifact_gc_deleted_blobs_total'), 1, 'the orphan, and only it, was collected');
    for (const id of [a.body.id, x.body.id, y.body.id]) assert.equal((await download(s.url, id)).status, 200);
  });

  test('the s3 backend without a bucket stops at start with a message naming the variable', async () => {
    const bad = new StoreUnderTest({ MUSE_ARTIFACT_BACKEND: 's3' });
    try {
      await assert.rejects(bad.start());
      assert.match(readFileSync(join(bad.dataDir, 'logs', 'artifact-store.log'), 'utf8'), /MUSE_ARTIFACT_S3_BUCKET is required/);
    } finally {
      await bad.stop();
    }
  });
});

describe('artifact lineage of a 3-step run, through the gateway', { timeout: 180_000 }, () => {
  let t: TestCluster;
  before(async () => {
    t = await startTestCluster();
  });
  after(() => t?.stop());

  test('upstream, downstream and consumers are complete; producer tool and retention are recorded', async () => {
    const definition = {
      name: 'lineage-three',
      retention: { ttlDays: 2 },
      steps: [
        { id: 'plan', agent: 'orchestrator', prompt: 'Plan {{ input.topic }}' },
        { id: 'lint', tool: 'shell', command: 'echo linting', needs: ['plan'] },
        { id: 'review', agent: 'reviewer', prompt: 'Review {{ steps.plan.output.text }} / {{ steps.lint.output.stdout }}', needs: ['plan', 'lint'] },
      ],
    };
    const submitted = await http(t.gateway, 'POST', '/v1/runs', { definition, input: { topic: 'lineage' } });
    assert.equal(submitted.status, 202, submitted.text);
    const run = await waitForRun(t.gateway, submitted.body.id);
    assert.equal(run.status, 'succeeded');
    const list = await http<{ items: ArtifactMeta[] }>(t.gateway, 'GET', `/v1/runs/${run.id}/artifacts`);
    // Each step's output (agent steps also have their recorded model call, llm-call.json, beside it).
    const byStep = new Map(list.body.items.filter((a) => a.name !== 'llm-call.json').map((a) => [a.stepId, a]));
    assert.deepEqual(list.body.items.filter((a) => a.name === 'llm-call.json').map((a) => a.stepId).sort(), ['plan', 'review']);
    assert.deepEqual([...byStep.keys()].sort(), ['lint', 'plan', 'review']);
    assert.deepEqual(byStep.get('lint')!.producer.tool, 'shell');
    assert.equal(byStep.get('plan')!.producer.tool, 'model');
    assert.equal(byStep.get('plan')!.producer.toolVersion, 'muse-local');
    const plan = byStep.get('plan')!;
    assert.equal(Date.parse(plan.expiresAt!) - Date.parse(plan.createdAt), 2 * 86_400_000);

    const ids = (nodes: ArtifactLineage['upstream']) => nodes.map((n) => [n.stepId, n.artifacts.filter((a: ArtifactRef) => a.name !== 'llm-call.json').map((a: ArtifactRef) => a.id)]);
    const mid = await http<ArtifactLineage>(t.gateway, 'GET', `/v1/artifacts/${byStep.get('lint')!.id}/lineage`);
    assert.equal(mid.status, 200, mid.text);
    assert.deepEqual(ids(mid.body.upstream), [['plan', [plan.id]]]);
    assert.deepEqual(ids(mid.body.downstream), [['review', [byStep.get('review')!.id]]]);
    assert.deepEqual(mid.body.artifact.consumers, [{ runId: run.id, stepId: 'review', attempt: 1 }]);

    const first = await http<ArtifactLineage>(t.gateway, 'GET', `/v1/artifacts/${plan.id}/lineage`);
    assert.deepEqual(first.body.upstream, []);
    assert.deepEqual(first.body.downstream.map((n) => n.stepId), ['lint', 'review']);
    assert.deepEqual(first.body.artifact.consumers!.map((c) => c.stepId).sort(), ['lint', 'review']);

    const last = await http<ArtifactLineage>(t.gateway, 'GET', `/v1/artifacts/${byStep.get('review')!.id}/lineage`);
    assert.deepEqual(last.body.upstream.map((n) => n.stepId).sort(), ['lint', 'plan']);
    assert.deepEqual(last.body.downstream, []);
    assert.deepEqual(last.body.runs, [run.id]);

    assert.equal((await http(t.gateway, 'GET', '/v1/artifacts/art_nosuchartifact0/lineage')).status, 404);
  });
});

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { replicateJobId, type ReplicatedChange } from '@meridian/proto';
import { freePort, startRedisServer, until, type RedisServer } from '@meridian/testkit';
import { startTestControlPlane, testChange, testRegion, type TestControlPlane, TEST_MANIFEST_TYPE, testDigest } from '../testing/test-control-plane.js';

// Redis holds nothing Postgres does not: a replication still pending in Postgres gets its job
// back whenever Redis has lost it, and the control plane works on while Redis is away.

const MANIFEST = TEST_MANIFEST_TYPE;
const digest = testDigest;
const started: TestControlPlane[] = [];
const redisServers: RedisServer[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((cp) => cp.close()));
  await Promise.all(redisServers.splice(0).map((redis) => redis.stop()));
});
afterAll(async () => {
  await Promise.all(redisServers.map((redis) => redis.stop()));
});

async function start(env: Record<string, string> = {}): Promise<TestControlPlane> {
  const cp = await startTestControlPlane(env);
  started.push(cp);
  for (const [index, name] of ['eu', 'us', 'ap'].entries()) {
    expect((await cp.request('POST', '/api/v1/regions', testRegion(name, index + 1))).status).toBe(201);
  }
  return cp;
}

async function push(cp: TestControlPlane, change: ReplicatedChange): Promise<string> {
  const [id] = await cp.deliver([change]);
  return id!;
}

const put = (seq: number, n: number) =>
  testChange('eu', seq, 1000 + seq, { kind: 'manifest.put', repository: 'requeue/app', digest: digest(n), mediaType: MANIFEST, size: n, tag: `v${n}` });

/** The ids of every job in the queue, sorted. */
async function queuedIds(cp: TestControlPlane): Promise<string[]> {
  const jobs = await cp.jobs.getJobs(['waiting', 'prioritized', 'delayed', 'active']);
  return jobs.map((job) => job.id!).sort();
}

/** Polls `read` until `done` holds of what it returns, and returns that; fails after libs/testkit until's deadline. */
async function readUntil<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let value!: T;
  await until(async () => done((value = await read())), { what: done.toString(), intervalMs: 50 });
  return value;
}

describe('requeue', () => {
  it('adds back every pending replication after Redis lost the queue, and only those', async () => {
    const cp = await start();
    const first = await push(cp, put(1, 1));
    const second = await push(cp, put(2, 2));
    await cp.request('POST', `/api/v1/replication/${first}/us`, { outcome: 'done' });
    await cp.jobs.remove(replicateJobId(first, 'us'));
    const expected = [replicateJobId(first, 'ap'), replicateJobId(second, 'ap'), replicateJobId(second, 'us')].sort();
    expect(await queuedIds(cp)).toEqual(expected);

    // What a Redis restarted without persistence looks like to the queue.
    await cp.jobs.obliterate({ force: true });
    expect(await queuedIds(cp)).toEqual([]);

    expect(await cp.controlPlane.requeue.run()).toBe(3);
    expect(await queuedIds(cp)).toEqual(expected);
    const job = await cp.jobs.getJob(replicateJobId(second, 'us'));
    expect(job?.data).toEqual({ changeId: second, region: 'us', change: put(2, 2) });

    // A pass over a queue that still holds the jobs adds no second copy.
    await cp.controlPlane.requeue.run();
    expect(await queuedIds(cp)).toEqual(expected);
  });

  it('runs by itself every MERIDIAN_REQUEUE_INTERVAL_SECONDS', async () => {
    const cp = await start({ MERIDIAN_REQUEUE_INTERVAL_SECONDS: '0.2' });
    const id = await push(cp, put(1, 1));
    await cp.jobs.obliterate({ force: true });
    const ids = await readUntil(
      () => queuedIds(cp),
      (value) => value.length === 2,
    );
    expect(ids).toEqual([replicateJobId(id, 'ap'), replicateJobId(id, 'us')]);
  });

  it('a control plane whose Redis is unreachable takes changes and serves the API; once Redis is up, the work is queued', async () => {
    const port = await freePort();
    const cp = await start({ REDIS_URL: `redis://127.0.0.1:${port}` });

    const id = await push(cp, put(1, 1));
    expect((await cp.request('GET', '/api/v1/regions')).status).toBe(200);
    expect((await cp.request('GET', '/healthz')).status).toBe(200);
    const notReady = await cp.request('GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body.error.detail).toEqual({ redis: expect.any(String) });
    expect((await cp.request('GET', '/api/v1/replication/status?repository=requeue/app&reference=v1')).body.regions).toHaveLength(3);

    redisServers.push(await startRedisServer(port));
    expect(
      await readUntil(
        () => queuedIds(cp),
        (value) => value.length === 2,
      ),
    ).toEqual([replicateJobId(id, 'ap'), replicateJobId(id, 'us')]);
    await readUntil(
      () => cp.request('GET', '/readyz'),
      (answer) => answer.status === 200,
    );

    // Redis dies and comes back empty: a change taken meanwhile and the one still pending both return.
    await redisServers.pop()!.stop();
    const later = await push(cp, put(2, 2));
    redisServers.push(await startRedisServer(port));
    expect(
      await readUntil(
        () => queuedIds(cp),
        (value) => value.length === 4,
      ),
    ).toEqual([replicateJobId(id, 'ap'), replicateJobId(id, 'us'), replicateJobId(later, 'ap'), replicateJobId(later, 'us')].sort());
  });
});

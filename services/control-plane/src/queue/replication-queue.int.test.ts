import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { REPLICATION_QUEUE, replicateJobId, type ReplicateJob } from '@meridian/proto';
import { until } from '@meridian/testkit';
import { TEST_MANIFEST_TYPE, testChange, testDigest } from '../testing/test-control-plane.js';
import { ReplicationQueue } from './replication-queue.js';

// A purge waits for the replication jobs running against its region (regions.ts,
// waitForRunningJobs). A job whose worker was killed stays 'active' in BullMQ until a live
// worker's stalled check moves it back, up to a minute, and nothing runs it meanwhile: a purge
// must not wait for it (seen in CI: a purge refused after 60 s, a test earlier having killed
// the worker mid-copy).
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('ReplicationQueue.runningFor', () => {
  const closing: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  it('counts a job a live worker runs, and not one left active by a worker that is gone', async () => {
    const prefix = `meridian-test-running-${randomBytes(4).toString('hex')}`;
    const queue = new ReplicationQueue({ redisUrl: REDIS_URL, prefix, logger: pino({ level: 'silent' }) });
    closing.push(() => queue.close());
    await until(() => queue.connected, { what: 'the queue connected to Redis' });
    const job: ReplicateJob = {
      changeId: '1',
      region: 'ap',
      change: testChange('eu', 1, 1001, { kind: 'manifest.put', repository: 'running/app', digest: testDigest(1), mediaType: TEST_MANIFEST_TYPE, size: 1, tag: 'v1' }),
    };
    expect(await queue.enqueue([job])).toBe(true);

    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    // A worker whose job never ends, with a short lock, so that its lock runs out soon once the
    // worker is gone; no stalled check of its own (it would move the job back itself).
    const worker = new Worker(REPLICATION_QUEUE, () => (started(), new Promise(() => undefined)), {
      connection: { url: REDIS_URL },
      prefix,
      lockDuration: 1000,
      stalledInterval: 600_000,
    });
    closing.push(() => worker.close(true).catch(() => undefined));
    await running;
    expect(await queue.runningFor('ap')).toBe(1);
    expect(await queue.runningFor('eu')).toBe(0);

    // The worker dies: no more lock renewals; the job stays active with its lock expiring.
    await worker.close(true);
    const redis = queue.redis;
    await until(async () => (await redis.exists(`${prefix}:${REPLICATION_QUEUE}:${replicateJobId('1', 'ap')}:lock`)) === 0, { what: "the dead worker's lock expired" });
    // Still 'active' in BullMQ's list, as after a kill.
    expect(await redis.lrange(`${prefix}:${REPLICATION_QUEUE}:active`, 0, -1)).toEqual([replicateJobId('1', 'ap')]);
    // Seen failing before: 1.
    expect(await queue.runningFor('ap')).toBe(0);
  }, 30_000);
});

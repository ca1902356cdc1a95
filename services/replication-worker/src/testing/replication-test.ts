import { randomUUID } from 'node:crypto';
import { Queue, type JobsOptions } from 'bullmq';
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { FakeReplicaRegion } from '@meridian/testkit/fake-replica-region';
import { TEST_CLUSTER_SECRET } from '@meridian/testkit';
import {
  JobName,
  nextHlc,
  REPLICATE_JOB_OPTIONS,
  REPLICATION_QUEUE,
  replicateJobId,
  type ChangeBody,
  type RegionRecord,
  type RegionState,
  type ReplicatedChange,
  type ReplicateJob,
} from '@meridian/proto';
import { createApp, type ReplicationWorker } from '../app.js';
import { loadConfig } from '../config.js';
import { ControlPlaneStub, type RecordedReport } from './control-plane-stub.js';

export interface TestRegion {
  fake: FakeReplicaRegion;
  lat?: number;
  lon?: number;
  state?: RegionState;
  /** An edge region's blob cache size. */
  cacheBytes?: number;
}

export interface ReplicationTest {
  controlPlane: ControlPlaneStub;
  queue: Queue;
  /** The worker running now (see restartWorker). */
  worker: ReplicationWorker;
  /** A change written at `origin`, stamped now. */
  change(origin: string, body: ChangeBody): ReplicatedChange;
  /** Adds the job for (change, target) as the control plane would, with a short back-off; returns its change id. */
  enqueue(change: ReplicatedChange, target: string, options?: JobsOptions, job?: Pick<ReplicateJob, 'backfill'>): Promise<string>;
  /** enqueue, then the worker's report for it. */
  replicate(change: ReplicatedChange, target: string, options?: JobsOptions, job?: Pick<ReplicateJob, 'backfill'>): Promise<RecordedReport>;
  /** Stops the running worker (its jobs go back to the queue) and starts another. */
  restartWorker(): Promise<void>;
  /**
   * Starts one more worker on the same queue, with nothing shared with the first (its own gRPC
   * clients, its own copies under way): another worker process, in this one. Stopped at close().
   */
  addWorker(): Promise<ReplicationWorker>;
  close(): Promise<void>;
}

/**
 * The worker in this process on the real Redis, under a BullMQ prefix of its own (so test files
 * never see each other's jobs), against the given fake regions and a control-plane stub. Test
 * support only: production code never imports it.
 */
export async function startReplicationTest(regions: TestRegion[], env: Record<string, string> = {}): Promise<ReplicationTest> {
  const controlPlane = await ControlPlaneStub.start(regions.map(regionRecord));
  const prefix = `meridian-test-${randomUUID()}`;
  const config = loadConfig({ PORT: '0', MERIDIAN_CONTROL_PLANE: controlPlane.url, MERIDIAN_CLUSTER_SECRET: TEST_CLUSTER_SECRET, MERIDIAN_QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent', ...env });
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const queue = new Queue(REPLICATION_QUEUE, { connection: { url: config.redisUrl }, prefix });
  const startWorker = async () => {
    const worker = createApp(config, logger);
    await worker.start();
    return worker;
  };
  let seq = 0;
  let changeIds = 0;
  const others: ReplicationWorker[] = [];
  const test: ReplicationTest = {
    controlPlane,
    queue,
    worker: await startWorker(),
    change: (origin, body) => ({ origin, seq: String(++seq), hlc: String(nextHlc(Date.now())), at: new Date().toISOString(), body }),
    async enqueue(change, target, options = {}, job = {}) {
      const changeId = String(++changeIds);
      await queue.add(
        JobName.Replicate,
        { changeId, region: target, change, ...job } satisfies ReplicateJob,
        { ...REPLICATE_JOB_OPTIONS, backoff: { type: 'fixed', delay: 10 }, jobId: replicateJobId(changeId, target), ...options },
      );
      return changeId;
    },
    async replicate(change, target, options, job) {
      return controlPlane.report(await test.enqueue(change, target, options, job), target);
    },
    async restartWorker() {
      await test.worker.stop();
      test.worker = await startWorker();
    },
    async addWorker() {
      const worker = await startWorker();
      others.push(worker);
      return worker;
    },
    async close() {
      await Promise.all([test.worker, ...others].map((worker) => worker.stop()));
      await queue.obliterate({ force: true });
      await queue.close();
      await controlPlane.close();
      await Promise.all(regions.map((r) => r.fake.close()));
    },
  };
  return test;
}

/**
 * For a test file: `const start = replicationTests()`, then `const t = await start(regions)` in
 * a test; what a test started (worker, queue keys, stub, regions) is closed after it.
 */
export function replicationTests(): (regions: TestRegion[], env?: Record<string, string>) => Promise<ReplicationTest> {
  let current: ReplicationTest | undefined;
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return async (regions, env) => (current = await startReplicationTest(regions, env));
}

/** Fake regions on loopback, one per name. */
export function startRegions(...names: string[]): Promise<FakeReplicaRegion[]> {
  return Promise.all(names.map((name) => FakeReplicaRegion.start(name)));
}

function regionRecord(region: TestRegion): RegionRecord {
  return {
    name: region.fake.name,
    http: 'http://127.0.0.1:9',
    grpc: region.fake.address,
    lat: region.lat ?? 0,
    lon: region.lon ?? 0,
    state: region.state ?? 'active',
    routing: true,
    ...(region.cacheBytes ? { cacheBytes: region.cacheBytes } : {}),
    heartbeatAt: null,
    backfill: null,
  };
}

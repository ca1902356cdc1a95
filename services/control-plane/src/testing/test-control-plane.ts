import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { REPLICATION_QUEUE, type ChangeBody, type ReplicatedChange, type ReplicateJob } from '@meridian/proto';
import { createEmptyTestDatabase, testQueuePrefix, TEST_CLUSTER_SECRET, TEST_REDIS_URL, type TestDatabase } from '@meridian/testkit';
import { createApp, type ControlPlane } from '../app.js';
import { loadConfig, type ControlPlaneConfig } from '../config.js';

export interface TestControlPlane {
  controlPlane: ControlPlane;
  url: string;
  config: ControlPlaneConfig;
  database: TestDatabase;
  /** A reader of the replication queue under this control plane's prefix, for assertions. */
  jobs: Queue<ReplicateJob>;
  /** JSON request to the admin API: status and parsed body (undefined when empty). */
  request<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Headers }>;
  /** POSTs changes of one origin as a batch (failing unless 200); their ids, in the given order. */
  deliver(changes: ReplicatedChange[]): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * An in-process control plane on an empty database and a data directory of its own and a BullMQ
 * prefix of its own on the test Redis (unless REDIS_URL is given), on a free loopback port, for
 * API tests. The periodic requeue is off (an hour) unless the test sets it. Auth is off
 * (MERIDIAN_AUTH=off) unless `env` sets MERIDIAN_AUTH: a test of access turns it on and passes
 * credentials. Test support only.
 */
export async function startTestControlPlane(env: Record<string, string> = {}): Promise<TestControlPlane> {
  const database = await createEmptyTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-control-plane-'));
  const config = loadConfig({
    PORT: '0',
    CONTROL_PLANE_DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    MERIDIAN_QUEUE_PREFIX: testQueuePrefix(),
    MERIDIAN_REQUEUE_INTERVAL_SECONDS: '3600',
    MERIDIAN_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
    MERIDIAN_DATA_DIR: dataDir,
    MERIDIAN_AUTH: 'off',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const controlPlane = await createApp(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  const url = await controlPlane.listen();
  const inspector = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  inspector.on('error', () => undefined);
  const jobs = new Queue<ReplicateJob>(REPLICATION_QUEUE, { connection: inspector, prefix: config.queuePrefix });
  // A test may start with Redis away on purpose; the reader waits for it quietly.
  jobs.on('error', () => undefined);
  const testControlPlane: TestControlPlane = {
    controlPlane,
    url,
    config,
    database,
    jobs,
    async request(method, path, body, headers = {}) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
    },
    async deliver(changes) {
      const origin = changes[0]!.origin;
      const answer = await testControlPlane.request('POST', '/api/v1/changes', { origin, changes });
      if (answer.status !== 200) throw new Error(`POST /api/v1/changes answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      const { rows } = await controlPlane.pool.query<{ id: string; seq: string }>('SELECT id, seq FROM changes WHERE origin = $1 AND seq = ANY($2::bigint[])', [
        origin,
        changes.map((change) => change.seq),
      ]);
      return changes.map((change) => rows.find((row) => row.seq === change.seq)!.id);
    },
    async close() {
      await controlPlane.close();
      await jobs.close();
      inspector.disconnect();
      await clearQueuePrefix(config.redisUrl, config.queuePrefix);
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return testControlPlane;
}

export const TEST_MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** A well-formed sha256 digest made from a number, for tests. */
export function testDigest(n: number): string {
  return `sha256:${String(n).padStart(64, '0')}`;
}

/** Deletes every Redis key under a test's queue prefix (nothing if that Redis is gone). */
export async function clearQueuePrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch {
    return;
  }
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** A change record of `origin` for tests: seq and hlc as given, `at` fixed. */
export function testChange(origin: string, seq: number | string, hlc: number | string, body: ChangeBody): ReplicatedChange {
  return { origin, seq: String(seq), hlc: String(hlc), at: '2026-01-01T00:00:00.000Z', body };
}

/** A region registration body for tests. */
export function testRegion(name: string, index = 1) {
  return { name, http: `http://127.0.0.1:${5000 + index * 10 + 1}`, grpc: `127.0.0.1:${7000 + index * 10 + 1}`, lat: 10 * index, lon: 20 * index };
}

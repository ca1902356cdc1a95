import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Cluster, type ClusterOptions } from '../../deploy/cluster/cluster.js';
import type { Skopeo } from './skopeo.js';

const POSTGRES = process.env.MERIDIAN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestCluster {
  cluster: Cluster;
  /** The cluster's home: state file, logs, region data; a fresh temporary folder. */
  home: string;
  /**
   * Stops every process, drops the cluster's databases and removes its home; with
   * E2E_KEEP_CLUSTER=1, only stops the processes, leaving the home (its logs) and databases for a
   * look after a failure.
   */
  dispose(): Promise<void>;
}

/**
 * A Cluster (`pnpm cluster up`'s) for one e2e file, apart from every other: a temporary home,
 * databases named `meridian_e2e_<random>_*` on the test Postgres and a BullMQ prefix of its own.
 * Nothing is started until the test calls `cluster.up(n)`.
 */
export async function createTestCluster(name: string, options: ClusterOptions = {}): Promise<TestCluster> {
  const run = randomBytes(4).toString('hex');
  const databasePrefix = `meridian_e2e_${run}`;
  const home = await mkdtemp(path.join(tmpdir(), `meridian-e2e-${name}-`));
  const cluster = new Cluster({
    home,
    postgresUrl: POSTGRES.replace(/\/[^/]*$/, ''),
    databasePrefix,
    queuePrefix: `meridian-e2e-${run}`,
    logLevel: 'info',
    // Scenarios push and pull without credentials unless they ask for auth.
    auth: false,
    ...options,
  });
  return {
    cluster,
    home,
    async dispose() {
      await cluster.down();
      if (process.env.E2E_KEEP_CLUSTER === '1') return;
      const admin = new pg.Client({ connectionString: POSTGRES });
      await admin.connect();
      try {
        const names = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${databasePrefix}%`]);
        for (const { datname } of names.rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** What a cluster suite's afterAll undoes, whichever of it its beforeAll got to make: the cluster, the skopeo, the work folder. */
export async function disposeAll(testCluster: TestCluster | undefined, skopeo: Skopeo | undefined, workDir: string | undefined): Promise<void> {
  await testCluster?.dispose();
  await skopeo?.dispose();
  if (workDir) await rm(workDir, { recursive: true, force: true });
}

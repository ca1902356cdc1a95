import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cluster, type ClusterState } from '../../deploy/cluster/cluster.js';
import { dropDatabases } from '../support/cluster-run.js';

/** The Postgres server the cluster benches put their databases on. */
export const BENCH_POSTGRES = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432';

/**
 * A cluster of its own for one figure of a cluster bench (`pnpm bench replication|routing`):
 * its own databases, data folder and queue prefix, all removed afterwards.
 */
export async function withCluster<T>(
  regions: number,
  work: (state: ClusterState, cluster: Cluster) => Promise<T>,
  options: { worker?: boolean; routerWorkers?: number } = {},
): Promise<T> {
  const run = randomBytes(4).toString('hex');
  const home = await mkdtemp(path.join(tmpdir(), 'meridian-bench-cluster-'));
  const cluster = new Cluster({ home, postgresUrl: BENCH_POSTGRES, databasePrefix: `meridian_bench_${run}`, queuePrefix: `meridian-bench-${run}`, logLevel: 'warn', auth: false, ...(options.routerWorkers ? { routerWorkers: options.routerWorkers } : {}) });
  try {
    return await work(await cluster.up(regions, options), cluster);
  } finally {
    await cluster.down();
    await dropDatabases(`${BENCH_POSTGRES}/postgres`, `meridian_bench_${run}`);
    await rm(home, { recursive: true, force: true });
  }
}

import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import { Metrics, observeDatabasePool, pathOf, type PoolCounts } from '@meridian/telemetry';
import { JOB_STATES, type ReplicationQueue } from './queue/replication-queue.js';
import type { ReplicationStore } from './store/replications.js';

/**
 * The control plane's metrics (README, "Observability"): the HTTP ones, the database pool, and,
 * read at each scrape, the replications pending per target region (Postgres, the record) and the
 * replication jobs per state (Redis, the delivery). With Redis away the job counts are left out
 * of the scrape rather than failing it.
 */
export function createControlPlaneMetrics(deps: {
  pool: PoolCounts;
  replications: Pick<ReplicationStore, 'pendingByRegion'>;
  queue: Pick<ReplicationQueue, 'jobCounts'>;
  onScrapeError(err: unknown): void;
}): Metrics {
  const metrics = new Metrics({ service: 'control-plane' });
  observeDatabasePool(metrics, deps.pool);
  metrics.gauge({
    name: 'meridian_replication_backlog',
    help: 'Replications not yet done, per target region.',
    labelNames: ['target_region'],
    async collect() {
      await deps.replications.pendingByRegion().then((pending) => {
        this.reset();
        for (const [region, count] of pending) this.set({ target_region: region }, count);
      }, deps.onScrapeError);
    },
  });
  metrics.gauge({
    name: 'meridian_replication_jobs',
    help: 'Replication jobs in the queue, per state.',
    labelNames: ['state'],
    async collect() {
      this.reset();
      await deps.queue.jobCounts().then((counts) => {
        for (const state of JOB_STATES) this.set({ state }, counts[state]);
      }, deps.onScrapeError);
    },
  });
  return metrics;
}

/** The route a control-plane response is counted under: express's route pattern (`/api/v1/regions/:name`), never the path. */
export function controlPlaneRouteOf(req: IncomingMessage): string {
  const route = (req as Request).route as { path?: unknown } | undefined;
  if (typeof route?.path === 'string') return route.path;
  return pathOf(req) === '/metrics' ? '/metrics' : 'unmatched';
}

import http from 'node:http';
import { pino, type Logger } from 'pino';
import type pg from 'pg';
import type { ControlPlaneConfig } from './config.js';
import { createApi } from './http/api.js';
import { ReplicationQueue } from './queue/replication-queue.js';
import { Requeue } from './queue/requeue.js';
import { Reconciler } from './reconcile/reconciler.js';
import { ReconcileStore } from './reconcile/store.js';
import { RegionService } from './regions.js';
import { ReplicationService } from './replication.js';
import { CatalogStore } from './store/catalog.js';
import { ChangeStore } from './store/changes.js';
import { createPool, prepareDatabase } from './store/db.js';
import { RegionStore } from './store/regions.js';
import { ReplicationStore } from './store/replications.js';
import { createControlPlaneMetrics } from './metrics.js';

export interface ControlPlane {
  server: http.Server;
  pool: pg.Pool;
  queue: ReplicationQueue;
  requeue: Requeue;
  regions: RegionService;
  replication: ReplicationService;
  reconciler: Reconciler;
  logger: Logger;
  /** Listens on config.host:config.port and starts the requeue; resolves with the URL. */
  listen(): Promise<string>;
  /** Stops taking requests, lets in-flight ones finish, stops the requeue, closes Redis and Postgres. */
  close(): Promise<void>;
}

/**
 * The composition root (CONTRIBUTING.md, 'Wiring'): database and schema, pool, stores, queue,
 * services, HTTP app, in that order. Redis need not be up: the queue connects when it can.
 */
export async function createApp(config: ControlPlaneConfig, logger: Logger = pino({ level: config.logLevel })): Promise<ControlPlane> {
  await prepareDatabase(config.databaseUrl, (message) => logger.debug(message));
  const pool = createPool(config.databaseUrl);
  // Not `{ err }`: pg-pool hangs the whole client (its buffers, its type tables) on the error.
  pool.on('error', (err) => logger.error({ reason: err.message, code: (err as { code?: string }).code }, 'idle database connection failed'));

  const regionStore = new RegionStore(pool);
  const changes = new ChangeStore(pool);
  const catalog = new CatalogStore(pool);
  const replications = new ReplicationStore(pool);

  const queue = new ReplicationQueue({ redisUrl: config.redisUrl, prefix: config.queuePrefix, logger });
  const requeue = new Requeue({ replications, queue, intervalMs: config.requeueIntervalMs, logger });

  const regions = new RegionService({ pool, regions: regionStore, catalog, replications, queue, requeue, logger });
  const replication = new ReplicationService({ pool, changes, catalog, regions: regionStore, replications, queue, logger });

  const reconciler = new Reconciler({
    regions: regionStore,
    store: new ReconcileStore(pool),
    requeue,
    logger,
    intervalMs: config.reconcileIntervalMs,
    verifyIntervalMs: config.reconcileVerifyIntervalMs,
  });

  const metrics = createControlPlaneMetrics({
    pool,
    replications,
    queue,
    onScrapeError: (err) => logger.debug({ err }, 'metrics: a figure could not be read for this scrape'),
  });
  const server = http.createServer(createApi({ pool, queue, regions, replication, reconciler, metrics, logger }));
  // Longer than typical client idle timeouts, so a relay's pooled connection is reused.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 76_000;

  return {
    server,
    pool,
    queue,
    requeue,
    regions,
    replication,
    reconciler,
    logger,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          const address = server.address();
          const port = typeof address === 'object' && address ? address.port : config.port;
          requeue.start();
          reconciler.start();
          resolve(`http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`);
        });
      }),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await reconciler.stop();
      await requeue.stop();
      await queue.close();
      await pool.end();
    },
  };
}

import express, { type Express, type RequestHandler } from 'express';
import type { IdentityStore } from '@meridian/metadata';
import type pg from 'pg';
import type { Logger } from 'pino';
import { createHttpMetricsMiddleware, createMetricsEndpoint, type Metrics } from '@meridian/telemetry';
import { controlPlaneRouteOf } from '../metrics.js';
import type { DashboardAssets } from '../dashboard/assets.js';
import type { Dashboard } from '../dashboard/dashboard.js';
import type { ReplicationQueue } from '../queue/replication-queue.js';
import type { Reconciler } from '../reconcile/reconciler.js';
import { createReconcileRouter } from '../reconcile/router.js';
import type { RegionService } from '../regions.js';
import type { ReplicationService } from '../replication.js';
import { createChangesRouter } from './changes.js';
import { createDashboardRouter } from './dashboard.js';
import { createErrorHandler, notFound } from './error-handler.js';
import { createHealthRouter } from './health.js';
import { createRegionsRouter } from './regions.js';
import { createReplicationRouter } from './replication.js';
import { createAuditRouter } from './audit.js';
import type { ClusterAuditStore } from '../store/audit.js';
import { createIdentitySyncRouter } from './identities.js';
import type { ClusterKeyStore } from '../store/signing-keys.js';

export interface ApiDeps {
  pool: pg.Pool;
  queue: ReplicationQueue;
  regions: RegionService;
  replication: ReplicationService;
  reconciler: Reconciler;
  metrics: Metrics;
  dashboard: Dashboard;
  dashboardAssets: () => Promise<DashboardAssets>;
  /** Every region's audit log. */
  audit: ClusterAuditStore;
  logger: Logger;
  /** Proxies whose X-Forwarded-For is believed (MERIDIAN_TRUSTED_PROXIES), as address ranges. */
  trustedProxies: readonly string[];
  /** With MERIDIAN_AUTH=on: the guard on everything but health and metrics, and the cluster's identities. */
  access?: {
    guard: RequestHandler;
    identityAdmin: RequestHandler;
    identityStore: IdentityStore;
    keys: ClusterKeyStore;
    keyRetentionSeconds: number;
  };
}

/** A batch of 1000 changes is well under 1 MiB; the bound keeps a bad client from sending more. */
const BODY_LIMIT = '4mb';

/**
 * The admin API (JSON under /api/v1), the health endpoints, /metrics and the dashboard; with
 * MERIDIAN_AUTH=on also the cluster's identity admin API (users, scope maps, tokens, as a lone
 * gateway serves it) and the identity sync of the regions, all behind the admin guard.
 */
export function createApi(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Whose X-Forwarded-For req.ip believes (libs/auth clientAddress: sign-in limits, the audit log).
  app.set('trust proxy', deps.trustedProxies);
  app.use(createHttpMetricsMiddleware({ metrics: deps.metrics, routeOf: controlPlaneRouteOf }));
  app.use(createMetricsEndpoint(() => deps.metrics.exposition()));
  app.use(express.json({ limit: BODY_LIMIT }));
  app.use(createHealthRouter(deps));
  if (deps.access) {
    app.use(deps.access.guard);
    app.use(deps.access.identityAdmin);
    app.use(createIdentitySyncRouter({ store: deps.access.identityStore, keys: deps.access.keys, keyRetentionSeconds: deps.access.keyRetentionSeconds }));
  }
  app.use(createRegionsRouter(deps));
  app.use(createChangesRouter(deps));
  app.use(createReplicationRouter(deps));
  app.use(createReconcileRouter(deps));
  app.use(createAuditRouter(deps));
  app.use(createDashboardRouter({ dashboard: deps.dashboard, assets: deps.dashboardAssets }));
  app.use(notFound);
  app.use(createErrorHandler(deps.logger));
  return app;
}

import http from 'node:http';
import https from 'node:https';
import { pino, type Logger } from 'pino';
import type pg from 'pg';
import { StartupError, type ControlPlaneConfig } from './config.js';
import { buildDashboardAssets, type DashboardAssets } from './dashboard/assets.js';
import { Dashboard } from './dashboard/dashboard.js';
import { RegionMetricsCollector } from './dashboard/region-metrics-collector.js';
import { createApi } from './http/api.js';
import { ClusterAuditStore } from './store/audit.js';
import { ReplicationQueue } from './queue/replication-queue.js';
import { Requeue } from './queue/requeue.js';
import { Reconciler, inventoryOverGrpc } from './reconcile/reconciler.js';
import { purgeOverGrpc } from './region-purge.js';
import { ReplicaDialer, createClusterHttp, httpsServerOptions, readPemFile, replicaChannelCredentials } from '@meridian/proto';
import { traceContextInterceptor } from '@meridian/telemetry/grpc';
import { ReconcileStore } from './reconcile/store.js';
import { RegionService } from './regions.js';
import { ReplicationService } from './replication.js';
import { CatalogStore } from './store/catalog.js';
import { ChangeStore } from './store/changes.js';
import { createPool, prepareDatabase } from './store/db.js';
import { RegionStore } from './store/regions.js';
import { ReplicationFiguresStore } from './store/replication-figures.js';
import { ReplicationStore } from './store/replications.js';
import { createControlPlaneMetrics } from './metrics.js';
import { mkdir } from 'node:fs/promises';
import { CONTROL_PLANE_AUDIENCE, IdentityService, ServiceTokenIssuer, ServiceTokenVerifier, SignInLimiter, prepareAdministrator } from '@meridian/auth';
import { createIdentityAdminRouter } from '@meridian/auth/http';
import { AuditRetention, IdentityStore, signInFailureCounters } from '@meridian/metadata';
import { stopServing } from '@meridian/supervisor';
import { createAdminGuard } from './http/admin-guard.js';
import { ClusterKeyStore } from './store/signing-keys.js';
import type { ApiDeps } from './http/api.js';

/** The dashboard's sparklines span an hour, a point a minute, and it follows the ten newest pushes. */
const DASHBOARD_WINDOW_MS = 3_600_000;
const DASHBOARD_STEP_MS = 60_000;
const DASHBOARD_PUSHES = 10;
/**
 * How long a signing key a region stopped publishing stays in the cluster's key set: far longer
 * than any access token lives (an hour at most), so a rotated key's tokens expire before it goes.
 */
const KEY_RETENTION_SECONDS = 24 * 3600;

export interface ControlPlane {
  server: http.Server;
  pool: pg.Pool;
  queue: ReplicationQueue;
  requeue: Requeue;
  regions: RegionService;
  replication: ReplicationService;
  reconciler: Reconciler;
  collector: RegionMetricsCollector;
  dashboard: Dashboard;
  /** Keeps the cluster's audit log to MERIDIAN_AUDIT_RETENTION_DAYS, from listen() on. */
  auditRetention: AuditRetention;
  logger: Logger;
  /** Listens on config.host:config.port and starts the requeue, the reconciler and the dashboard's collector; resolves with the URL. */
  listen(): Promise<string>;
  /** Stops taking requests (ending dashboard streams), lets in-flight ones finish, stops the background work, closes Redis and Postgres. */
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
  const figures = new ReplicationFiguresStore(pool);

  const queue = new ReplicationQueue({ redisUrl: config.redisUrl, prefix: config.queuePrefix, logger });
  const requeue = new Requeue({ replications, queue, intervalMs: config.requeueIntervalMs, logger });

  // The control plane's calls to regions (purge, inventory) carry its service token, and a traced
  // request's trace context (a purge asked for by a traced admin request continues in the region).
  const readPem = (file: string, variable: string) => readPemFile(file, variable, (message) => new StartupError(message));
  const regionCa = config.tlsCaFile ? await readPem(config.tlsCaFile, 'MERIDIAN_TLS_CA') : undefined;
  const dialer = new ReplicaDialer({ tokens: new ServiceTokenIssuer(config.clusterSecret, 'control-plane'), credentials: replicaChannelCredentials(regionCa), interceptors: [traceContextInterceptor] });
  // The dashboard's probes and scrapes of the regions trust the same authority.
  const clusterHttp = createClusterHttp(regionCa ? { ca: regionCa } : {});
  const regions = new RegionService({ pool, regions: regionStore, catalog, replications, queue, requeue, logger, openPurge: purgeOverGrpc(dialer) });
  const replication = new ReplicationService({ pool, changes, catalog, regions: regionStore, replications, queue, logger });

  const reconciler = new Reconciler({
    regions: regionStore,
    store: new ReconcileStore(pool),
    requeue,
    logger,
    intervalMs: config.reconcileIntervalMs,
    verifyIntervalMs: config.reconcileVerifyIntervalMs,
    readInventory: inventoryOverGrpc(dialer),
  });

  const metrics = createControlPlaneMetrics({
    pool,
    replications,
    queue,
    onScrapeError: (err) => logger.debug({ err }, 'metrics: a figure could not be read for this scrape'),
  });
  const collector = new RegionMetricsCollector({
    regions: regionStore,
    backlog: () => replications.pendingByRegion(),
    lag: (windowSeconds) => figures.lagP99ByTarget(windowSeconds),
    intervalMs: config.dashboardScrapeIntervalMs,
    fetch: clusterHttp.fetch,
    windowMs: DASHBOARD_WINDOW_MS,
    logger,
  });
  const dashboard = new Dashboard({
    regions: regionStore,
    replications,
    figures,
    collector,
    logger,
    windowMs: DASHBOARD_WINDOW_MS,
    stepMs: DASHBOARD_STEP_MS,
    pushes: DASHBOARD_PUSHES,
  });
  let assets: Promise<DashboardAssets> | undefined;
  const dashboardAssets = () => {
    // Built once, when first asked for; a failed build is tried again on the next request.
    assets ??= buildDashboardAssets().catch((err: unknown) => {
      assets = undefined;
      throw err;
    });
    return assets;
  };

  const audit = new ClusterAuditStore(pool);
  // The cluster's log has no queue of its own to wait for: its entries are there once stored.
  const auditRetention = new AuditRetention({ pool, retentionDays: config.auditRetentionDays, keepUnshipped: false, log: logger });
  const access = config.auth ? await prepareAccess(config.auth, config.clusterSecret, pool, audit, logger) : undefined;
  const api = createApi({ pool, queue, regions, replication, reconciler, metrics, dashboard, dashboardAssets, audit, logger, trustedProxies: config.trustedProxies, ...(access ? { access } : {}) });
  // With MERIDIAN_TLS_CERT and _KEY, the admin API (and the dashboard) serve HTTPS.
  const certificate = config.tls ? { cert: await readPem(config.tls.certFile, 'MERIDIAN_TLS_CERT'), key: await readPem(config.tls.keyFile, 'MERIDIAN_TLS_KEY') } : undefined;
  const server: http.Server = certificate ? https.createServer(httpsServerOptions(certificate), api) : http.createServer(api);
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
    collector,
    dashboard,
    auditRetention,
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
          collector.start();
          auditRetention.start();
          resolve(`${certificate ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`);
        });
      }),
    async close() {
      // First the collector: it may be asking this very server (a region's address can be any
      // HTTP endpoint), and its keep-alive requests would hold the server open.
      await collector.stop();
      const stopped = stopServing(server, config.shutdownGraceMs);
      dashboard.close();
      await stopped;
      await reconciler.stop();
      await requeue.stop();
      await auditRetention.stop();
      await queue.close();
      await clusterHttp.close();
      await pool.end();
    },
  };
}

/** With MERIDIAN_AUTH=on: the cluster's identities, its administrator, and the guard that checks every caller. */
async function prepareAccess(auth: NonNullable<ControlPlaneConfig['auth']>, clusterSecret: string, pool: pg.Pool, audit: ClusterAuditStore, logger: Logger): Promise<NonNullable<ApiDeps['access']>> {
  const identityStore = new IdentityStore(pool);
  // A checked password is taken again for a minute without argon2 (the dashboard, a CLI script);
  // changes made through this control plane end that at once.
  const identities = new IdentityService(identityStore, { signInCacheMs: 60_000, limiter: new SignInLimiter(signInFailureCounters(pool, auth.signInLimits)) });
  await mkdir(auth.dataDir, { recursive: true, mode: 0o700 });
  await prepareAdministrator(identities, { ...(auth.adminPassword !== undefined ? { adminPassword: auth.adminPassword } : {}), dataDir: auth.dataDir }, logger);
  return {
    guard: createAdminGuard({ identities, services: new ServiceTokenVerifier(clusterSecret, CONTROL_PLANE_AUDIENCE), audit: audit.identityAdmin }),
    // Identity changes go into the cluster's audit log, beside every region's entries.
    identityAdmin: createIdentityAdminRouter({ identities, audit: audit.identityAdmin }),
    identityStore,
    keys: new ClusterKeyStore(pool),
    keyRetentionSeconds: KEY_RETENTION_SECONDS,
  };
}

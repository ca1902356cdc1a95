import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import express from 'express';
import type pg from 'pg';
import { pino, type Logger } from 'pino';
import { BlobStore, STORAGE_DRIVERS } from '@meridian/blobstore';
import { AuditRetention, ChangeListener, Metadata, createPool, signInFailureCounters } from '@meridian/metadata';
import type { GatewayConfig } from './config.js';
import { prepareRegion } from './region-setup.js';
import { StartupError, dataDirStartupError } from './startup-errors.js';
import { LookupCache, UploadStateSigner, createRegistry, type Registry } from '@meridian/registry';
import { stopServing } from '@meridian/supervisor';
import { createOciRouter } from './http/oci-router.js';
import { createErrorHandler, routeNotFound } from './http/error-handler.js';
import { dispatchOciFirst } from './http/oci-first.js';
import { createHealthHandler } from './http/handlers/health.js';
import { expressBuiltMessages } from './http/express-messages.js';
import { createRegionReplication } from './replication/region-replication.js';
import { clusterCallTraceHeaders, createHttpMetricsMiddleware, createMetricsEndpoint, currentTraceCarrier, metricsSource, type Tracing } from '@meridian/telemetry';
import { traceContextInterceptor } from '@meridian/telemetry/grpc';
import { createGatewayMetrics, gatewayRouteOf } from './metrics.js';
import { PeerRegions } from './replication/peer-regions.js';
import { ReplicaDialer, createClusterHttp, httpsServerOptions, readPemFile, replicaChannelCredentials } from '@meridian/proto';
import { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import { BlobUrlSigner, CONTROL_PLANE_AUDIENCE, ServiceTokenIssuer, ServiceTokenVerifier, SignInLimiter } from '@meridian/auth';
import { administratorOnly, createIdentityAdminRouter } from '@meridian/auth/http';
import { prepareIdentities } from './identity-setup.js';
import { createAccessGuard } from './http/access-guard.js';
import { createBlobRedirects } from './http/blob-redirects.js';
import { createTokenHandler } from './http/handlers/token.js';
import { AuditTrail } from './http/audit-trail.js';
import { createAuditRouter } from './http/handlers/audit.js';
import { refuseIdentityChanges } from './http/handlers/cluster-identities.js';

/** How long a shutdown waits for the handlers of cut connections to finish cleaning up. */
const HANDLER_CLEANUP_MS = 5000;

export interface Gateway {
  server: http.Server;
  registry: Registry;
  logger: Logger;
  /** Keeps the region's audit log to MERIDIAN_AUDIT_RETENTION_DAYS, from listen() on. */
  auditRetention: AuditRetention;
  /** The metadata pool every request's statements go through (the change listener has a connection of its own). */
  pool: pg.Pool;
  /** Listens on config.host:config.port (and the replica server on its port); resolves with the URL. */
  listen(): Promise<string>;
  /** The replica protocol's port once listening, when MERIDIAN_GRPC_PORT is set. */
  readonly replicaPort: number | undefined;
  /** Stops taking requests, lets in-flight ones finish (up to the grace period), then closes stores. */
  close(): Promise<void>;
}

/**
 * The composition root (CONTRIBUTING.md, 'Wiring'): database and schema, pool, stores, blob
 * driver, caches, domain services, HTTP app, in that order. Everything a part needs is passed
 * to it here.
 */
export interface AppOptions {
  /** With tracing on: the middleware that makes a sampled request's server span (libs/telemetry Tracing.requests). */
  requestTracing?: Tracing['requests'];
}

export async function createApp(config: GatewayConfig, logger: Logger = pino({ level: config.logLevel }), options: AppOptions = {}): Promise<Gateway> {
  const uploadSecret = await prepareRegion(config, logger);
  const pool = createPool({ databaseUrl: config.databaseUrl, max: config.databasePoolSize });
  pool.on('error', (err) => logger.error({ err }, 'idle database connection failed'));
  // Each change appended to the outbox keeps the trace of the request that made it.
  // In a cluster, audit entries are queued for the control plane, which keeps every region's log.
  const metadata = new Metadata(pool, { traceContext: currentTraceCarrier, shipAudit: config.controlPlaneUrl !== undefined });
  const gatewayMetrics = createGatewayMetrics({
    region: config.region,
    pool,
    metadata,
    // Read at a scrape, once the store below exists.
    uploadsHoldingBytes: () => blobStore.uploadsHoldingBytes(),
    onScrapeError: (err) => logger.warn({ err }, 'metrics: reading the region\'s metadata or store failed'),
  });

  const driver = STORAGE_DRIVERS[config.storageDriver]({
    rootDirectory: path.join(config.dataDir, 'store'),
    directWrites: config.directWrites,
    onDirectWritesOff: (reason) => logger.warn({ reason }, 'blob writes now go through the page cache'),
  });
  // The start's write probe (region-setup) passed, but making the blob folders can still meet a
  // file in their place, a folder this user may not write, or a full disk: one line, as there.
  await driver.prepare?.().catch(async (err: unknown) => {
    await pool.end().catch(() => undefined);
    throw dataDirStartupError(err, config.dataDir) ?? err;
  });
  const blobStore = new BlobStore(driver, { warn: (details, message) => logger.warn(details, message) });
  logger.info({ storageDriver: driver.name, blobWrites: await driver.describeWrites?.() }, 'blob store ready');

  const cache = new LookupCache({ maxEntries: config.cacheEntries });
  const changeListener = new ChangeListener(config.databaseUrl, {
    onChange: (change) => cache.invalidate(change),
    onReset: () => cache.suspend(),
    onListening: () => cache.resume(),
    onError: (err) => logger.warn({ err }, 'metadata change listener: connection lost or notification ignored'),
  });
  await changeListener.start();

  // A session idle past the limit is purged: its token, all there is of an open session, is refused from then on.
  const uploadSigner = new UploadStateSigner(uploadSecret, { maxIdleMs: config.uploadMaxIdleMs });
  // With MERIDIAN_TLS_CERT and _KEY, HTTPS and the replica server serve this certificate.
  const readPem = (file: string, variable: string) => readPemFile(file, variable, (message) => new StartupError(message));
  const certificate = config.tls ? { cert: await readPem(config.tls.certFile, 'MERIDIAN_TLS_CERT'), key: await readPem(config.tls.keyFile, 'MERIDIAN_TLS_KEY') } : undefined;
  const peerCa = config.tlsCaFile ? await readPem(config.tlsCaFile, 'MERIDIAN_TLS_CA') : undefined;
  // Every call to the control plane (identity sync, relay, audit, read-through's region list) trusts the same authority as the replica clients.
  const clusterHttp = createClusterHttp(peerCa ? { ca: peerCa } : {});
  // In a cluster, the replica protocol is authenticated both ways with service tokens from the cluster secret.
  const clusterSecret = config.clusterSecret;
  const serviceTokens = clusterSecret ? new ServiceTokenIssuer(clusterSecret, 'gateway') : undefined;
  // A traced pull's fill (and a traced apply's FetchBlob) continues in the peer's replica server.
  const dialer = serviceTokens ? new ReplicaDialer({ tokens: serviceTokens, credentials: replicaChannelCredentials(peerCa), interceptors: [traceContextInterceptor] }) : undefined;
  // Calls to the control plane carry a service token too (its admin API asks for one with MERIDIAN_AUTH=on);
  // the configuration asks for the cluster secret whenever it names a control plane.
  const controlPlane = config.controlPlaneUrl && serviceTokens
    ? new ControlPlaneHttp({ url: config.controlPlaneUrl, fetch: clusterHttp.fetch, headers: async () => ({ ...clusterCallTraceHeaders(), authorization: `Bearer ${await serviceTokens.token(CONTROL_PLANE_AUDIENCE)}` }) })
    : undefined;
  // In a cluster, what the region lacks is asked of its peers (read-through); on its own, nothing changes.
  const peers = controlPlane && dialer ? new PeerRegions({ region: config.region, controlPlane, dialer, logger }) : undefined;
  const registry = createRegistry({
    metadata,
    blobStore,
    cache,
    uploadSigner,
    logger,
    region: config.region,
    ...(peers
      ? {
          peers,
          readThroughMetrics: {
            fillFinished: (result) => gatewayMetrics.readThroughFills.inc({ result }),
            blobServed: (from) => (from === 'local' ? gatewayMetrics.blobCacheHits : gatewayMetrics.blobCacheMisses).inc(),
            blobEvicted: () => gatewayMetrics.blobCacheEvictions.inc(),
          },
        }
      : {}),
  });

  const readinessChecks = {
    database: async () => void (await pool.query('SELECT 1')),
    blobStore: () => blobStore.checkWritable(),
  };
  const replication = createRegionReplication({
    config,
    metadata,
    blobStore,
    cache,
    readiness: () => checkAll(readinessChecks),
    logger,
    ...(clusterSecret ? { callers: new ServiceTokenVerifier(clusterSecret, config.region) } : {}),
    ...(certificate ? { certificate } : {}),
    // A region being purged is draining: read-through must see that now, not at its next read of the list.
    ...(peers ? { onPurge: () => peers.forgetRegions(), openPeerBlob: (region, digest, offset) => peers.openBlob(region, digest, offset) } : {}),
    ...(controlPlane ? { controlPlane } : {}),
  });

  // With MERIDIAN_AUTH=on: the administrator, the signing key, and the guard on every /v2 request.
  // In a cluster, the identities are the control plane's, copied into the region's database.
  const cluster = controlPlane ? { region: config.region, controlPlane } : undefined;
  const identities = config.auth ? await prepareIdentities(config.auth, config.dataDir, metadata, new SignInLimiter(signInFailureCounters(pool, config.auth.signInLimits)), logger, cluster) : undefined;
  // Sign-ins and identity changes; pushes and deletes are audited by the registry, in their transactions.
  const audit = new AuditTrail(config.region, metadata.audit);

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Whose X-Forwarded-For req.ip believes (libs/auth clientAddress).
  app.set('trust proxy', config.trustedProxies);
  const inFlight = new Set<Promise<void>>();
  const countRequest = createHttpMetricsMiddleware({ metrics: gatewayMetrics.metrics, routeOf: gatewayRouteOf });
  // Signed blob URLs share the upload secret, the one secret every gateway of the region holds (under a key of their own).
  const blobUrls = identities ? new BlobUrlSigner(uploadSecret) : undefined;
  const blobRedirects = createBlobRedirects(blobUrls);
  const ociRouter = createOciRouter({ registry, inFlight, metrics: gatewayMetrics, blobRedirects, ...(identities && blobUrls ? { guard: createAccessGuard(identities, audit, blobUrls) } : {}) });
  const errorHandler = createErrorHandler(logger);
  // Before the identity admin API, whose own gate would otherwise check the credentials a second time.
  const identityAdmin = identities ? { identities: identities.identities, audit: audit.identityAdmin } : undefined;
  app.use(createAuditRouter({ store: metadata.audit, ...(identityAdmin ? { gate: administratorOnly(identityAdmin) } : {}) }));
  if (identities && identityAdmin) {
    app.use(createTokenHandler(identities, audit));
    // In a cluster the control plane manages identities; a region's copy is read-only.
    app.use(cluster ? refuseIdentityChanges(cluster.controlPlane.url) : createIdentityAdminRouter(identityAdmin));
  }
  // After the OCI routes, which answer every /v2 request themselves, so these cost them nothing.
  app.use(
    createHealthHandler({ checks: readinessChecks, logger }),
  );
  app.use(createMetricsEndpoint(metricsSource(gatewayMetrics.metrics)));
  app.use(routeNotFound);
  app.use(errorHandler);

  // Every request is counted, and a /v2 request answered, before express: its dispatch (final
  // handler, router stack, path trimming, per layer) cost each request more than the OCI
  // router's own work, and the clients that open a connection per request (skopeo, podman,
  // buildah) pay for it four times a blob. Only what the OCI router does not answer (health,
  // metrics, token, audit, identities, the 404) goes through express.
  const serve = dispatchOciFirst(app, countRequest, ociRouter, errorHandler);
  // The tracing decision runs first too: all but about one pull in a hundred are left out.
  const traceRequest = options.requestTracing?.(gatewayRouteOf);
  const handle: http.RequestListener = traceRequest ? (req, res) => traceRequest(req, res, () => serve(req, res)) : serve;
  const server = certificate
    ? https.createServer({ ...expressBuiltMessages(app), ...httpsServerOptions(certificate) }, handle)
    : http.createServer(expressBuiltMessages(app), handle);
  // Longer than typical client and load-balancer idle timeouts, so pooled connections are reused.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 76_000;
  // Blob bodies may take long; the per-request timeout must not cut a slow 5 GiB upload.
  server.requestTimeout = 0;
  // What does cut a stalled client: no bytes either way for this long. With no 'timeout'
  // listener on the server, Node destroys the socket, and the request's cleanup runs.
  server.timeout = config.idleTimeoutMs;

  const purgeTimer = setInterval(() => {
    registry.uploads.purgeStale(config.uploadMaxIdleMs).catch((err) => logger.warn({ err }, 'purging stale uploads failed'));
  }, Math.min(config.uploadMaxIdleMs, 3600_000));
  purgeTimer.unref();
  // An entry not shipped to the control plane yet stays until it is (a lone region has none such).
  const auditRetention = new AuditRetention({ pool, retentionDays: config.auditRetentionDays, keepUnshipped: true, log: logger });

  return {
    server,
    registry,
    logger,
    auditRetention,
    pool,
    async listen() {
      const url = await new Promise<string>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          const address = server.address();
          const port = typeof address === 'object' && address ? address.port : config.port;
          resolve(`${certificate ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`);
        });
      });
      // The replica server and the relay come up once the region serves its own clients.
      await replication.start();
      auditRetention.start();
      return url;
    },
    get replicaPort() {
      return replication.grpcPort;
    },
    async close() {
      clearInterval(purgeTimer);
      await stopServing(server, config.shutdownGraceMs);
      // Connections cut at the end of the grace period leave handlers undoing their work
      // (cutting back a chunk, releasing a session lock); they need the database and the disk a
      // moment longer. Bounded, in case one is stuck on something that never answers.
      await settledWithin([...inFlight], HANDLER_CLEANUP_MS);
      await replication.close(HANDLER_CLEANUP_MS);
      await auditRetention.stop();
      peers?.close();
      await identities?.sync?.stop();
      await identities?.rotation.stop();
      await changeListener.stop();
      await clusterHttp.close();
      await pool.end();
    },
  };
}

/** Runs every readiness check; not ready names each part that failed and why. */
async function checkAll(checks: Record<string, () => Promise<void>>): Promise<{ ready: boolean; detail: string }> {
  const failed: string[] = [];
  await Promise.all(
    Object.entries(checks).map(([name, check]) => check().catch((err: Error) => void failed.push(`${name}: ${err.message}`))),
  );
  return { ready: failed.length === 0, detail: failed.join('; ') };
}

/** Resolves once every promise has settled, or after `ms`, whichever comes first. */
async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(promises), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

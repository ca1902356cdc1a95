import { CONTROL_PLANE_AUDIENCE, ServiceTokenIssuer } from '@meridian/auth';
import http from 'node:http';
import https from 'node:https';
import { createClusterHttp, httpsServerOptions, readPemFile } from '@meridian/proto';
import { stopServing } from '@meridian/supervisor';
import { clusterCallTraceHeaders } from '@meridian/telemetry';
import { pino, type Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { StartupError, type RouterConfig } from './config.js';
import { PipelinedLanes } from './http/pipelined-lanes.js';
import { RegionProxy } from './http/region-proxy.js';
import { createRequestHandler } from './http/request-handler.js';
import { SlowClientBudget } from './http/slow-clients.js';
import { ClientLocator } from './locations/client-locator.js';
import { createRouterMetrics, type RouterMetrics } from './metrics.js';
import { HealthMonitor } from './regions/health-monitor.js';
import { RegionDirectory } from './regions/region-directory.js';
import { RegionSelector } from './regions/region-selector.js';

/**
 * How many requests one pipelined connection to a region carries at once (RegionDispatchers):
 * kept short, since each answer waits for those ahead of it on its connection.
 */
const PIPELINED_REQUESTS = 8;

/**
 * How many pipelined connections a region may have from one router process when all are full
 * (PipelinedLanes): 256 requests in flight; past that, each goes on a connection of its own.
 */
const MAX_PIPELINED_CONNECTIONS = 32;

/** How long one read of the region list from the control plane may take. */
const REGION_LIST_TIMEOUT_MS = 5000;

export interface Router {
  server: http.Server;
  directory: RegionDirectory;
  health: HealthMonitor;
  selector: RegionSelector;
  metrics: RouterMetrics;
  logger: Logger;
  /**
   * Reads the region list (a control plane that does not answer is retried in the background:
   * the router then starts unready), probes each region once, starts the periodic reads and
   * probes, and listens on config.host:config.port. Resolves with the URL.
   */
  listen(): Promise<string>;
  /** Stops taking requests, lets in-flight ones finish (up to the grace period), stops probing. */
  close(): Promise<void>;
}

/**
 * The composition root (CONTRIBUTING.md, 'Wiring'): the upstream connection pool, the location
 * table, the region list, health probes, the ranking of regions, metrics, the HTTP server, in
 * that order. Everything a part needs is passed to it here.
 */
export async function createApp(config: RouterConfig, logger: Logger = pino({ level: config.logLevel })): Promise<Router> {
  const readPem = (file: string, variable: string) => readPemFile(file, variable, (message) => new StartupError(message));
  // One pool of keep-alive connections per region, shared by probes, the region list and the
  // proxied requests that are not pipelined, trusting MERIDIAN_TLS_CA besides the system's
  // authorities.
  const ca = config.tlsCaFile ? { ca: await readPem(config.tlsCaFile, 'MERIDIAN_TLS_CA') } : {};
  const agent = { connect: { timeout: config.connectTimeoutMs }, keepAliveTimeout: 60_000, headersTimeout: config.upstreamTimeoutMs, bodyTimeout: config.upstreamTimeoutMs };
  const clusterHttp = createClusterHttp({ ...ca, agent });
  const dispatcher = clusterHttp.dispatcher;
  // The pipelined lanes (PipelinedLanes): connections opened as the pool opens its own (the same
  // authorities and connect timeout), each carrying up to PIPELINED_REQUESTS requests at once, at
  // least MERIDIAN_ROUTER_PIPELINED_CONNECTIONS of them per region: only for the small answers
  // RegionDispatchers.pipelined names (e2e/bench/README.md, `pnpm bench routing`, has what it saves).
  const lanes = new PipelinedLanes({
    connect: clusterHttp.connect,
    timeoutMs: config.upstreamTimeoutMs,
    minLanes: config.pipelinedConnections,
    maxLanes: Math.max(MAX_PIPELINED_CONNECTIONS, config.pipelinedConnections),
    depth: PIPELINED_REQUESTS,
    stallMs: config.pipelineStallMs,
    overflow: dispatcher,
  });
  const locator = new ClientLocator(config.locations, config.trustedProxies);

  const selector = new RegionSelector(
    { regions: () => directory.regions(), isHealthy: (name) => health.isHealthy(name) },
    config.defaultRegion,
  );
  const health = new HealthMonitor({
    ...config.probe,
    probe: (region) => probeReadiness(dispatcher, region.http, config.probe.timeoutMs).catch((err: unknown) => Promise.reject(clusterHttp.explain(region.http, err))),
    logger,
    onChange: () => selector.invalidate(),
  });
  // Draining regions are neither routed to nor probed; `adding` ones are probed so that they
  // are known healthy the moment they turn active.
  const trackRegions = () => health.track(directory.regions().filter((region) => region.state !== 'draining'));
  const serviceTokens = config.clusterSecret ? new ServiceTokenIssuer(config.clusterSecret, 'router') : undefined;
  const directory = new RegionDirectory({
    controlPlaneUrl: config.controlPlaneUrl,
    refreshIntervalMs: config.regionRefreshMs,
    timeoutMs: REGION_LIST_TIMEOUT_MS,
    http: clusterHttp,
    logger,
    // The router records no traces: each read says so, or the control plane would start one of
    // its own for a share of them.
    headers: async () => ({ ...clusterCallTraceHeaders(), ...(serviceTokens ? { authorization: `Bearer ${await serviceTokens.token(CONTROL_PLANE_AUDIENCE)}` } : {}) }),
    onChange: () => {
      selector.invalidate();
      void trackRegions().then(() => selector.invalidate());
    },
  });

  const slowClients = new SlowClientBudget({
    maxBytes: config.slowClientBufferBytes,
    writeTimeoutMs: config.clientWriteTimeoutMs,
    onCut({ reason, heldBytes, totalBytes }) {
      metrics.slowClientCut(reason);
      logger.warn(
        { reason, heldBytes, totalBytes, budgetBytes: config.slowClientBufferBytes },
        reason === 'budget' ? 'cut the connection of the client holding the most of the slow-client budget' : 'cut the connection of a client that took none of its answer in time',
      );
    },
  });
  const metrics = createRouterMetrics(() => health.snapshot(), () => slowClients.heldBytes);
  const readiness = () => {
    const list = directory.status();
    const states = health.snapshot();
    const routable = selector.routableRegions();
    const regions = Object.fromEntries(
      directory.regions().map((region) => {
        const state = states.get(region.name);
        return [region.name, { state: region.state, routing: region.routing, healthy: state?.healthy ?? false, ...(state?.lastError ? { error: state.lastError } : {}) }];
      }),
    );
    const ready = routable.length > 0;
    return {
      ready,
      report: {
        status: ready ? 'ready' : 'unavailable',
        controlPlane: { ok: list.error === undefined && list.loaded, ...(list.error ? { error: list.error } : {}), ...(list.readAt ? { readSecondsAgo: Math.round((Date.now() - list.readAt) / 1000) } : {}) },
        regions,
        routable: routable.map((region) => region.name),
      },
    };
  };

  const handler = createRequestHandler({ locator, selector, proxy: new RegionProxy({ pipelined: lanes, exclusive: dispatcher }, { upstreamMs: config.upstreamTimeoutMs }, slowClients), metrics, readiness, logger });
  // With MERIDIAN_TLS_CERT and _KEY, clients reach the router over HTTPS.
  const certificate = config.tls ? { cert: await readPem(config.tls.certFile, 'MERIDIAN_TLS_CERT'), key: await readPem(config.tls.keyFile, 'MERIDIAN_TLS_KEY') } : undefined;
  const server: http.Server = certificate ? https.createServer(httpsServerOptions(certificate), handler) : http.createServer(handler);
  // Longer than typical client and load-balancer idle timeouts, so pooled connections are reused.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 76_000;
  // A proxied upload POST may stream for long; only a connection with nothing moving is cut.
  server.requestTimeout = 0;
  server.timeout = config.idleTimeoutMs;

  return {
    server,
    directory,
    health,
    selector,
    metrics,
    logger,
    async listen() {
      await directory.start();
      await trackRegions();
      selector.invalidate();
      health.start();
      return new Promise<string>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          const address = server.address();
          const port = typeof address === 'object' && address ? address.port : config.port;
          resolve(`${certificate ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`);
        });
      });
    },
    async close() {
      directory.stop();
      health.stop();
      await stopServing(server, config.shutdownGraceMs);
      lanes.close();
      await clusterHttp.close();
    },
  };
}

/** A region's `/readyz`: it serves when that answers 200 within `timeoutMs`. */
async function probeReadiness(dispatcher: Dispatcher, origin: string, timeoutMs: number): Promise<void> {
  const response = await dispatcher.request({
    origin,
    path: '/readyz',
    method: 'GET',
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.body.dump();
  if (response.statusCode !== 200) throw new Error(`/readyz answered ${response.statusCode}`);
}

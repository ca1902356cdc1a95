import http from 'node:http';
import https from 'node:https';
import { httpsServerOptions, type ServerCertificate } from '@meridian/proto';
import type { Logger } from 'pino';
import { createHttpMetricsMiddleware, createMetricsEndpoint, pathOf, type Metrics } from '@meridian/telemetry';

/** One part the worker needs in order to work; resolves when it answers, throws saying why not. */
export type ReadinessCheck = () => Promise<void>;

/** The worker's routes, by the names its HTTP metrics count them under. */
const ROUTES: Record<string, string> = { '/metrics': 'metrics', '/healthz': 'healthz', '/readyz': 'readyz' };

/** How long a part may take to answer /readyz before it counts as failed. */
const CHECK_TIMEOUT_MS = 2000;

/**
 * The worker's small HTTP side, for Prometheus and orchestrators (it takes its work from Redis,
 * not from requests): GET `/metrics`; `/healthz` answers 200 while the process lives; `/readyz`
 * 200 when every check (Redis, the control plane) answers within two seconds, else 503 naming
 * each part that did not. Over HTTPS (TLS 1.2 at least) when given a certificate.
 */
export function createWorkerServer(deps: { metrics: Metrics; checks: Record<string, ReadinessCheck>; logger: Logger; certificate?: ServerCertificate }): http.Server {
  const metricsEndpoint = createMetricsEndpoint(() => deps.metrics.exposition());
  const httpMetrics = createHttpMetricsMiddleware({ metrics: deps.metrics, routeOf: (req) => ROUTES[pathOf(req)] ?? 'unmatched' });
  const handle: http.RequestListener = (req, res) => httpMetrics(req, res, () => {
    const fail = (err: unknown) => {
      deps.logger.error({ err }, 'worker HTTP request failed');
      if (!res.headersSent) send(res, 500, { status: 'error' });
      else res.destroy();
    };
    metricsEndpoint(req, res, (err) => {
      if (err) return fail(err);
      const path = pathOf(req);
      if (path !== '/healthz' && path !== '/readyz') return send(res, 404, { status: 'not found' });
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { status: 'method not allowed' });
      if (path === '/healthz') return send(res, 200, { status: 'ok' });
      readiness(deps.checks).then(({ ready, failing }) => send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', ...(ready ? {} : { failing }) }), fail);
    });
  });
  return deps.certificate ? https.createServer(httpsServerOptions(deps.certificate), handle) : http.createServer(handle);
}

async function readiness(checks: Record<string, ReadinessCheck>): Promise<{ ready: boolean; failing: Record<string, string> }> {
  const failing: Record<string, string> = {};
  await Promise.all(
    Object.entries(checks).map(([name, check]) => withinTime(check()).catch((err: Error) => void (failing[name] = err.message))),
  );
  return { ready: Object.keys(failing).length === 0, failing };
}

function withinTime(check: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)));
  return Promise.race([check, late]).finally(() => clearTimeout(timer));
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : payload);
}

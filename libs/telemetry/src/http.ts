import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Exposition, Metrics } from './metrics.js';

/** A connect-style middleware: express takes it as it is, and so does a bare node:http server. */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** Methods that get a label of their own; anything else is counted as `other`, so clients cannot mint series. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface HttpMetricsOptions {
  metrics: Metrics;
  /**
   * The name of the route that answered, read once the response is over: a name from the
   * service's route table (`manifest`, `blob`, `healthz`), never the request's path, repository
   * or digest, which are unbounded.
   */
  routeOf(req: IncomingMessage, res: ServerResponse): string;
}

/**
 * Counts every request (`meridian_http_requests_total{route,method,status}`) and times it from
 * its headers to the end of its response, or to the connection's end if the client goes first
 * (`meridian_http_request_duration_seconds{route,method}`). Put it first, so that requests
 * answered by any later middleware are counted.
 */
export function createHttpMetricsMiddleware({ metrics, routeOf }: HttpMetricsOptions): Middleware {
  const { httpRequests, httpRequestDuration } = metrics;
  return (req, res, next) => {
    // performance.now() is monotonic like hrtime, without a BigInt made at each end.
    const started = performance.now();
    res.once('close', () => {
      const route = routeOf(req, res);
      const method = METHODS.has(req.method!) ? req.method! : 'other';
      httpRequests.inc({ route, method, status: String(res.statusCode) });
      httpRequestDuration.observe({ route, method }, (performance.now() - started) / 1000);
    });
    next();
  };
}

/**
 * GET or HEAD `/metrics`: the Prometheus text exposition from `source` (this process's registry,
 * or the sum over a gateway's worker processes). Any other path goes to `next()`.
 */
export function createMetricsEndpoint(source: () => Promise<Exposition>): Middleware {
  return (req, res, next) => {
    if (pathOf(req) !== '/metrics') return next();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.statusCode = 405;
      res.setHeader('Allow', 'GET, HEAD');
      return void res.end();
    }
    source().then((exposition) => {
      res.statusCode = 200;
      res.setHeader('Content-Type', exposition.contentType);
      res.setHeader('Content-Length', Buffer.byteLength(exposition.text));
      res.setHeader('Cache-Control', 'no-store');
      res.end(req.method === 'HEAD' ? undefined : exposition.text);
    }, next);
  };
}

/** The request's path without its query string. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const queryStart = url.indexOf('?');
  return queryStart === -1 ? url : url.slice(0, queryStart);
}

import type { Request, RequestHandler, Response } from 'express';
import type { Counter } from '@meridian/telemetry';
import {
  UnsupportedError,
  assertRepositoryName,
  matchRoute,
  type HttpMethod,
  type RouteName,
} from '@meridian/oci';
import type { Registry } from '@meridian/registry';
import type { GatewayMetrics } from '../metrics.js';
import type { RouteHandlers } from './handlers/handler.js';
import { baseHandlers } from './handlers/base.js';
import { catalogHandlers } from './handlers/catalog.js';
import { tagHandlers } from './handlers/tags.js';
import { manifestHandlers } from './handlers/manifests.js';
import { blobHandlers } from './handlers/blobs.js';
import { blobUploadHandlers, blobUploadSessionHandlers } from './handlers/blob-uploads.js';
import { referrerHandlers } from './handlers/referrers.js';
import { OPEN_ACCESS, type AccessGuard } from './access-guard.js';
import type { BlobRedirects } from './blob-redirects.js';

/** Route name (from libs/oci's table) → its handlers. */
const HANDLERS: Record<RouteName, RouteHandlers> = {
  base: baseHandlers,
  catalog: catalogHandlers,
  tags: tagHandlers,
  manifest: manifestHandlers,
  'blob-upload-session': blobUploadSessionHandlers,
  'blob-upload': blobUploadHandlers,
  blob: blobHandlers,
  referrers: referrerHandlers,
};

export interface OciRouterDependencies {
  registry: Registry;
  /**
   * Every handler still running, so that a shutdown can wait for the cleanup of requests whose
   * connections it cut (a chunk undone, a session lock released) before the process exits.
   */
  inFlight: Set<Promise<void>>;
  metrics: Pick<GatewayMetrics, 'blobBytesReceived' | 'blobBytesServed'>;
  /** Checks each request's credentials against its route's action; absent, everything is open (MERIDIAN_AUTH=off). */
  guard?: AccessGuard;
  blobRedirects: BlobRedirects;
}

/** Routes whose request bodies are blob bytes. */
const UPLOAD_ROUTES: ReadonlySet<RouteName> = new Set(['blob-upload', 'blob-upload-session']);

/**
 * Dispatches /v2 requests through the route table of libs/oci: match the raw path, check the
 * repository name before anything else sees it, then call the route's handler for the method.
 * `res.locals.route` and `res.locals.action` carry the route name (for metrics labels) and the
 * action it needs, which the access guard checks before the handler runs.
 */
export function createOciRouter({ registry, inFlight, metrics, guard, blobRedirects }: OciRouterDependencies): RequestHandler {
  return (req, res, next) => {
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    const queryStart = req.url.indexOf('?');
    const pathname = queryStart === -1 ? req.url : req.url.slice(0, queryStart);
    const match = matchRoute(pathname);
    // Not an OCI route: the app's other routes (health checks) come next, then the 404.
    if (!match) return next();
    const method = req.method as HttpMethod;
    const action = match.route.methods[method];
    const handler = HANDLERS[match.route.name][method];
    res.locals.route = match.route.name;
    if (action === undefined || handler === undefined) {
      res.setHeader('Allow', Object.keys(match.route.methods).join(', '));
      return next(new UnsupportedError(`${req.method} is not supported on ${match.route.name}`));
    }
    res.locals.action = action;
    try {
      if (match.params.name !== undefined) assertRepositoryName(match.params.name);
    } catch (err) {
      return next(err);
    }
    if (UPLOAD_ROUTES.has(match.route.name)) countBodyBytes(req, metrics.blobBytesReceived);
    else if (match.route.name === 'blob' && method === 'GET') countServedBytes(res, metrics.blobBytesServed);
    const params = match.params as { name: string };
    const running = (async () => {
      const access = guard ? await guard(req, action, match.params.name, match.route.name === 'blob' ? match.params.digest : undefined) : OPEN_ACCESS;
      await handler({ req, res, params, registry, access, blobRedirects });
      // A rejection without a reason is still a failure: `next()` would hand the request on to the app's other routes.
    })().catch((err: unknown) => next(err ?? new Error('a request handler failed without a reason')));
    inFlight.add(running);
    void running.finally(() => inFlight.delete(running));
  };
}

/**
 * Counts a request's body bytes as whatever reads them (a pipeline into the blob store) takes
 * them: a 'data' listener sees every chunk read, whether by piping or by read(). The body is
 * paused first, so the listener does not start the flow itself and lose bytes before the handler
 * pipes them; piping resumes it.
 */
function countBodyBytes(req: Request, counter: Counter): void {
  req.pause();
  req.on('data', (chunk: Buffer) => counter.inc(chunk.length));
}

/** Counts a blob response's bytes once it has been sent in full. */
function countServedBytes(res: Response, counter: Counter): void {
  res.once('finish', () => {
    const length = Number(res.getHeader('content-length'));
    if ((res.statusCode === 200 || res.statusCode === 206) && length > 0) counter.inc(length);
  });
}

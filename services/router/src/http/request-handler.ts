import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegionFailedError, RegionUnavailableError, RouteNotFoundError, matchRoute, type RouteName } from '@meridian/oci';
import { createHttpMetricsMiddleware, createMetricsEndpoint, metricsSource, pathOf } from '@meridian/telemetry';
import type { ClientLocator } from '../locations/client-locator.js';
import type { RouterMetrics } from '../metrics.js';
import type { RegionSelector } from '../regions/region-selector.js';
import { AnswerTooLargeError, UpstreamError, type RegionProxy } from './region-proxy.js';
import { sendError, sendJson } from './send.js';

/** The request header that names a region to prefer (for testing, and for clients that know better). */
export const REGION_HINT_HEADER = 'meridian-region';

export interface RequestHandlerDependencies {
  locator: ClientLocator;
  selector: RegionSelector;
  proxy: RegionProxy;
  metrics: RouterMetrics;
  /** `/readyz`: whether the router can route, and the facts behind it. */
  readiness: () => { ready: boolean; report: unknown };
  logger: Logger;
}

/** The router's own endpoints (outside distribution-spec). */
const OWN_ENDPOINTS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Routes whose `Location` is made absolute at the region: an upload session lives there, and a
 * blob GET's redirect points at the region's own copy.
 */
const ABSOLUTE_LOCATION_ROUTES: ReadonlySet<RouteName> = new Set(['blob-upload', 'blob-upload-session', 'blob']);

/**
 * Routes whose GET answers are small and bounded, the base endpoint's and a manifest's (at most
 * MAX_MANIFEST_BYTES): these, and every HEAD, may share pipelined connections to the region
 * (RegionDispatchers.pipelined). Not a blob GET: the region redirects it, but serves the bytes
 * itself while it is still filling the blob from a peer. Nor tag lists, the catalog or
 * referrers, which grow with the repository.
 */
const PIPELINED_GET_ROUTES: ReadonlySet<RouteName> = new Set(['base', 'manifest']);

/** Where a response keeps the name of the route it is counted under. */
const ROUTE_NAME = Symbol('route name');
type CountedResponse = ServerResponse & { [ROUTE_NAME]?: string };

/**
 * Every request the router takes. `/v2` requests are matched against libs/oci's route table
 * (for the metrics label and the blob-GET decision) and sent to the nearest routable region:
 *
 * - every request is proxied (the base endpoint, manifests, blobs, tags, referrers, the catalog,
 *   uploads), credentials included. A proxied request the region fails before answering is sent
 *   once to the next region, if nothing of its body has gone yet and it is not a PATCH (a chunk
 *   of an upload, which belongs to the first region's session);
 * - a blob GET (distribution-spec v1.1 "Pulling blobs") goes with BLOB_REDIRECT_HEADER: the
 *   region, having checked the credentials, answers 307 to its own copy, at a signed URL when
 *   auth is on, so the bytes travel from the region to the client and never through the router.
 *   The router cannot redirect by itself: a client sends no `Authorization` to another host, and
 *   only the region can sign a URL that needs none.
 *
 * `/healthz`, `/readyz` and `/metrics` are the router's own; any other path is 404 UNSUPPORTED
 * in the OCI error form.
 */
export function createRequestHandler(deps: RequestHandlerDependencies): RequestListener {
  const { locator, selector, proxy, metrics, readiness, logger } = deps;

  const route = (req: IncomingMessage, res: ServerResponse, routeName: RouteName, fail: (err: unknown) => void): void => {
    const clientAddress = locator.clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for']);
    const hint = req.headers[REGION_HINT_HEADER];
    const ranking = selector.rank(locator.locate(clientAddress), typeof hint === 'string' ? hint : undefined);
    const [nearest, next] = ranking;
    if (!nearest) return fail(new RegionUnavailableError('no region can take requests now: none is active, healthy and open to routing'));
    const blobRedirect = routeName === 'blob' && req.method === 'GET';
    const mode = blobRedirect ? 'redirect' : 'proxy';
    const pipelined = req.method === 'HEAD' || (req.method === 'GET' && PIPELINED_GET_ROUTES.has(routeName));
    const options = { absoluteLocation: ABSOLUTE_LOCATION_ROUTES.has(routeName), clientAddress, blobRedirect, pipelined };
    metrics.routed(nearest.name, mode);
    proxy.forward(req, res, nearest, options, (err) => {
      if (err === undefined) return;
      // The client went away first (undici was told to stop): nothing failed, nobody to answer.
      if (res.destroyed && !err.answered) return;
      // A manifest larger than any may be is refused, not looked for elsewhere: the region's
      // fault, and every region would answer alike.
      const tooLarge = err.cause instanceof AnswerTooLargeError;
      const retry = next !== undefined && !err.answered && !err.bodyTaken && req.method !== 'PATCH' && !tooLarge;
      logger.warn({ region: err.region, method: req.method, route: routeName, retryOn: retry ? next.name : undefined }, err.message);
      if (err.answered) return;
      if (tooLarge) return fail(new RegionFailedError(`region ${nearest.name} answered with more than ${(err.cause as AnswerTooLargeError).limit} bytes, the most a manifest may have`));
      if (!retry) return fail(new RegionFailedError(`region ${nearest.name} failed before answering`));
      metrics.retried(nearest.name);
      metrics.routed(next.name, mode);
      try {
        proxy.forward(req, res, next, options, (again) => {
          if (again === undefined) return;
          logger.warn({ region: again.region, method: req.method, route: routeName }, again.message);
          if (!again.answered) fail(new RegionFailedError(`regions ${nearest.name} and ${next.name} failed before answering`));
        });
      } catch (unexpected) {
        fail(unexpected);
      }
    });
  };

  // In a supervised router, every worker's series summed (the supervisor gathers them).
  const metricsEndpoint = createMetricsEndpoint(metricsSource(metrics.metrics));
  const ownEndpoint = (req: IncomingMessage, res: ServerResponse, pathname: string, fail: (err: unknown) => void): void => {
    if (pathname === '/metrics') return metricsEndpoint(req, res, fail);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
      res.end();
    } else if (pathname === '/healthz') {
      sendJson(req, res, 200, { status: 'ok' });
    } else {
      const { ready, report } = readiness();
      sendJson(req, res, ready ? 200 : 503, report);
    }
  };

  // The route name each response is counted under (`meridian_http_requests_total{route}`), kept
  // on the response itself: a WeakMap's entries are ephemerons, which every scavenge of the
  // young generation (where each request's objects live) has to process apart.
  const countRequest = createHttpMetricsMiddleware({ metrics: metrics.metrics, routeOf: (_req, res) => (res as CountedResponse)[ROUTE_NAME] ?? 'unmatched' });
  const proceed = () => undefined;

  return (req, res) => {
    countRequest(req, res, proceed);
    const pathname = pathOf(req);
    const fail = (err: unknown) => sendError(req, res, err, logger);

    const match = matchRoute(pathname);
    if (match) {
      (res as CountedResponse)[ROUTE_NAME] = match.route.name;
      try {
        route(req, res, match.route.name, fail);
      } catch (err) {
        fail(err);
      }
    } else if (OWN_ENDPOINTS.has(pathname)) {
      (res as CountedResponse)[ROUTE_NAME] = pathname.slice(1);
      ownEndpoint(req, res, pathname, fail);
    } else {
      fail(new RouteNotFoundError(`no endpoint at ${pathname.slice(0, 200)}`));
    }
  };
}

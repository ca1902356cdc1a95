import type { RequestHandler } from 'express';
import {
  UnsupportedError,
  assertRepositoryName,
  matchRoute,
  type HttpMethod,
  type RouteName,
} from '@meridian/oci';
import type { Registry } from '@meridian/registry';
import type { RouteHandlers } from './handlers/handler.js';
import { baseHandlers } from './handlers/base.js';
import { catalogHandlers } from './handlers/catalog.js';
import { tagHandlers } from './handlers/tags.js';
import { manifestHandlers } from './handlers/manifests.js';
import { blobHandlers } from './handlers/blobs.js';
import { blobUploadHandlers, blobUploadSessionHandlers } from './handlers/blob-uploads.js';
import { referrerHandlers } from './handlers/referrers.js';

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
}

/**
 * Dispatches /v2 requests through the route table of libs/oci: match the raw path, check the
 * repository name before anything else sees it, then call the route's handler for the method.
 * `res.locals.route` and `res.locals.action` carry the route name (for metrics labels) and the
 * action it needs (for the planned access guard, which goes here).
 */
export function createOciRouter({ registry, inFlight }: OciRouterDependencies): RequestHandler {
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
    const running = handler({ req, res, params: match.params as { name: string }, registry }).catch(next);
    inFlight.add(running);
    void running.finally(() => inFlight.delete(running));
  };
}

import type http from 'node:http';
import type express from 'express';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import type { Middleware } from '@meridian/telemetry';
import { routeNotFound } from './error-handler.js';

/**
 * The gateway's request listener: counts the request (`countRequest`), offers it to the OCI
 * router, and hands express only what that router passes on (not a /v2 route: health checks,
 * metrics, the token endpoint, audit, identities, the 404). An OCI router's error goes to the
 * one error handler (CONTRIBUTING.md, 'Errors') as express would send it there, and its
 * `next('route')` and `next('router')` mean what they mean to express.
 *
 * This skips, for every /v2 request, what express's dispatch costs on its way to a layer: its
 * final handler made per request, the router's stack walk with path matching and trimming for
 * each layer. Each request still gets what express gives the handlers: express's request and
 * response prototypes (`res.status`, `req.query`, `req.ip`), `req.res`, `res.req` and
 * `res.locals`.
 */
export function dispatchOciFirst(app: express.Express, countRequest: Middleware, ociRouter: RequestHandler, errorHandler: ErrorRequestHandler): http.RequestListener {
  const answerError = (err: unknown, req: Request, res: Response) => {
    try {
      errorHandler(err, req, res, ignore);
    } catch {
      // The error answer itself failed (a broken socket): the connection is all that is left to end.
      res.destroy();
    }
  };
  return (incoming, outgoing) => {
    const req = incoming as Request;
    const res = outgoing as Response;
    // Built with them already (expressBuiltMessages); set here only if a Node release stops that.
    if (Object.getPrototypeOf(req) !== app.request) {
      Object.setPrototypeOf(req, app.request);
      Object.setPrototypeOf(res, app.response);
    }
    req.res = res;
    res.req = req;
    res.locals = {};
    countRequest(req, res, ignore);
    try {
      // Inline rather than a named constant: the TypeScript loader would name each request's closure with a defineProperty call.
      // As express's router reads a middleware's `next`: 'route' is no error, the app's routes
      // come next; 'router' leaves them all, for the final 404 (here routeNotFound's).
      ociRouter(req, res, (err?: unknown) =>
        err === undefined || err === 'route' ? app(req, res) : err === 'router' ? routeNotFound(req, res, (notFound) => answerError(notFound, req, res)) : answerError(err, req, res),
      );
    } catch (err) {
      answerError(err, req, res);
    }
  };
}

/** The `next` of a middleware whose continuation is the caller's own next step. */
function ignore(): void {}

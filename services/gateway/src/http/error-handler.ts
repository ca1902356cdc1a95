import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import {
  BlobRangeNotSatisfiableError,
  RouteNotFoundError,
  StorageFailedError,
  StorageFullError,
  TooManyRequestsError,
  UnauthorizedError,
  UploadRangeInvalidError,
  toOciError,
} from '@meridian/oci';
import { isDiscardingBody } from './request.js';

/** The last route: a path no route answered is 404 UNSUPPORTED, through the error handler. */
export const routeNotFound: RequestHandler = (req, _res, next) => {
  const queryStart = req.url.indexOf('?');
  const pathname = queryStart === -1 ? req.url : req.url.slice(0, queryStart);
  next(new RouteNotFoundError(`no endpoint at ${pathname.slice(0, 200)}`));
};

/** Headers that stay on an error response: they are about the endpoint or the client, not the content. */
const KEPT_ON_ERROR = new Set(['docker-distribution-api-version', 'allow', 'www-authenticate', 'retry-after', 'connection']);

/**
 * The one place an error becomes a response (CONTRIBUTING.md, 'Errors'): the OCI error body
 * with the status from libs/oci's table. Unexpected errors are UNKNOWN/500 and logged; their
 * text is not sent. A write the storage refused is logged with its cause (EROFS, ENOSPC…) and
 * the path it hit; the response names the cause only.
 */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const { status, body, unexpected } = toOciError(err);
    if (unexpected) logger.error({ err, method: req.method, route: res.locals.route }, 'request failed');
    else if (err instanceof StorageFailedError || err instanceof StorageFullError) {
      logger.error(
        { err: err.cause, code: err.systemCode, path: err.path, status, method: req.method, route: res.locals.route },
        `storage write failed: ${err.systemCode} at ${err.path}`,
      );
    }
    if (res.headersSent) {
      // The body was already streaming: the only honest signal left is a cut connection.
      res.destroy();
      return;
    }
    // A handler may have set its success headers (a 206's Content-Range, Docker-Content-Digest)
    // before failing; they must not describe the error. Headers about the request as a whole stay.
    for (const name of res.getHeaderNames()) if (!KEPT_ON_ERROR.has(name)) res.removeHeader(name);
    if (err instanceof UnauthorizedError) res.setHeader('WWW-Authenticate', err.challenge);
    if (err instanceof TooManyRequestsError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
    if (err instanceof BlobRangeNotSatisfiableError) res.setHeader('Content-Range', `bytes */${err.size}`);
    if (err instanceof UploadRangeInvalidError) {
      const offset = (err.detail as { offset?: number } | undefined)?.offset;
      if (offset !== undefined) res.setHeader('Range', `0-${Math.max(0, offset - 1)}`);
    }
    // An error may be sent before the request body was read; make sure the connection does not
    // then try to parse the unread body as the next request.
    // (Unless the body is being read to its end and dropped: then the connection stays good.)
    if (!req.complete && !isDiscardingBody(req)) res.setHeader('Connection', 'close');
    const payload = JSON.stringify(body);
    res.status(status).setHeader('Content-Type', 'application/json');
    res.setHeader('Content-Length', Buffer.byteLength(payload));
    res.end(req.method === 'HEAD' ? undefined : payload);
  };
}

import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { BlobRangeNotSatisfiableError, UploadRangeInvalidError, toOciError } from '@meridian/oci';
import { isDiscardingBody } from './request.js';

/** Headers that stay on an error response: they are about the endpoint or the client, not the content. */
const KEPT_ON_ERROR = new Set(['docker-distribution-api-version', 'allow', 'www-authenticate', 'retry-after', 'connection']);

/**
 * The one place an error becomes a response (CONTRIBUTING.md, 'Errors'): the OCI error body
 * with the status from libs/oci's table. Unexpected errors are UNKNOWN/500 and logged; their
 * text is not sent.
 */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const { status, body, unexpected } = toOciError(err);
    if (unexpected) logger.error({ err, method: req.method, route: res.locals.route }, 'request failed');
    if (res.headersSent) {
      // The body was already streaming: the only honest signal left is a cut connection.
      res.destroy();
      return;
    }
    // A handler may have set its success headers (a 206's Content-Range, Docker-Content-Digest)
    // before failing; they must not describe the error. Headers about the request as a whole stay.
    for (const name of res.getHeaderNames()) if (!KEPT_ON_ERROR.has(name)) res.removeHeader(name);
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

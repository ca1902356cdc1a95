import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { RegistryError, TooManyRequestsError, UnauthorizedError, type ErrorKind } from '@meridian/oci';
import { ApiError, type ApiErrorCode } from '../errors.js';

/**
 * The identity admin API and the credential checks are libs/auth's, shared with the gateway, and
 * throw libs/oci's errors; these are their rows here.
 */
const IDENTITY_ERRORS: Partial<Record<ErrorKind, ApiErrorCode>> = {
  Unauthorized: 'UNAUTHORIZED',
  Denied: 'DENIED',
  IdentityUnknown: 'IDENTITY_UNKNOWN',
  IdentityConflict: 'IDENTITY_CONFLICT',
  IdentityInvalid: 'IDENTITY_INVALID',
  TooManyRequests: 'TOO_MANY_REQUESTS',
};

/**
 * The one place an error becomes a response: `{"error":{"code","message","detail"}}` with the
 * status from API_ERROR_TABLE. express's body parser reports unreadable JSON and oversized bodies
 * with errors of its own; they get their rows too. Anything else is INTERNAL/500, logged, and its
 * text is not sent.
 */
export function createErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = toApiError(err);
    if (error.code === 'INTERNAL') logger.error({ err, method: req.method, url: req.originalUrl }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof UnauthorizedError) res.setHeader('WWW-Authenticate', err.challenge);
    if (err instanceof TooManyRequestsError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
    res.status(error.status).json({ error: { code: error.code, message: error.message, ...(error.detail === undefined ? {} : { detail: error.detail }) } });
  };
}

/** Paths no route serves. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new ApiError('NOT_FOUND', `no endpoint ${req.method} ${req.path}`));
};

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof RegistryError && IDENTITY_ERRORS[err.kind]) return new ApiError(IDENTITY_ERRORS[err.kind]!, err.message, err.detail);
  const parserType = (err as { type?: unknown } | null)?.type;
  if (parserType === 'entity.parse.failed') return new ApiError('INVALID_REQUEST', `invalid request body: not JSON (${(err as Error).message})`);
  if (parserType === 'entity.too.large') return new ApiError('BODY_TOO_LARGE', `request body larger than ${(err as { limit?: number }).limit} bytes`);
  return new ApiError('INTERNAL', 'internal error');
}

/**
 * The one error model (CONTRIBUTING.md, 'Errors'). Domain code and stores throw these typed
 * errors; one translation (`toOciError`) turns any of them into the distribution-spec error body
 * `{"errors":[{code,message,detail}]}` with the status from ERROR_TABLE. Handlers never pick
 * a status themselves.
 */

/**
 * Error codes of distribution-spec v1.1 "Error Codes" (code-1 … code-14), plus UNKNOWN for an
 * internal failure, as Distribution answers: no spec code describes "the server broke".
 */
export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNKNOWN';

export const OCI_ERROR_MESSAGES: Record<OciErrorCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'the operation is unsupported',
  TOOMANYREQUESTS: 'too many requests',
  UNKNOWN: 'unknown error',
};

/** Base class: every Meridian domain error says which row of ERROR_TABLE it is. */
export abstract class RegistryError extends Error {
  abstract readonly kind: ErrorKind;
  constructor(
    message?: string,
    /** Structured detail for the error body's `detail` field; never secrets. */
    readonly detail?: unknown,
  ) {
    // An error answered 4xx is the client's mistake or a lookup that found nothing (a HEAD before
    // each blob a client pushes): the error middleware answers it and logs nothing, so the stack
    // V8 would capture, async frames and all, is never read. A 5xx keeps its stack for the log.
    const stackTraceLimit = Error.stackTraceLimit;
    if ((new.target as { answeredOnly?: boolean }).answeredOnly) Error.stackTraceLimit = 0;
    try {
      super(message);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = new.target.name;
  }
}

/**
 * Every kind of failure, with the OCI code and HTTP status it is answered with. Some codes
 * appear twice with different statuses because the spec asks for it: an out-of-order chunk is a
 * BLOB_UPLOAD_INVALID answered 416 ("Pushing a blob in chunks"), a bad upload body a 400.
 */
export const ERROR_TABLE = {
  BlobUnknown: { code: 'BLOB_UNKNOWN', status: 404 },
  BlobUploadInvalid: { code: 'BLOB_UPLOAD_INVALID', status: 400 },
  UploadRangeInvalid: { code: 'BLOB_UPLOAD_INVALID', status: 416 },
  // distribution-spec has no code for an unsatisfiable read range; UNSUPPORTED says what the client asked cannot be served.
  BlobRangeNotSatisfiable: { code: 'UNSUPPORTED', status: 416 },
  BlobUploadUnknown: { code: 'BLOB_UPLOAD_UNKNOWN', status: 404 },
  DigestInvalid: { code: 'DIGEST_INVALID', status: 400 },
  ManifestBlobUnknown: { code: 'MANIFEST_BLOB_UNKNOWN', status: 400 },
  ManifestInvalid: { code: 'MANIFEST_INVALID', status: 400 },
  ManifestTooLarge: { code: 'SIZE_INVALID', status: 413 },
  ManifestUnknown: { code: 'MANIFEST_UNKNOWN', status: 404 },
  ManifestNotAcceptable: { code: 'MANIFEST_UNKNOWN', status: 404 },
  // Deleting a manifest an index of the repository still lists would leave the index dangling.
  // The spec has no code for it; 409 Conflict says the state of the repository is in the way.
  ManifestReferenced: { code: 'UNSUPPORTED', status: 409 },
  TagInvalid: { code: 'MANIFEST_INVALID', status: 400 },
  NameInvalid: { code: 'NAME_INVALID', status: 400 },
  NameUnknown: { code: 'NAME_UNKNOWN', status: 404 },
  SizeInvalid: { code: 'SIZE_INVALID', status: 400 },
  Unauthorized: { code: 'UNAUTHORIZED', status: 401 },
  Denied: { code: 'DENIED', status: 403 },
  Unsupported: { code: 'UNSUPPORTED', status: 405 },
  RouteNotFound: { code: 'UNSUPPORTED', status: 404 },
  PaginationInvalid: { code: 'UNSUPPORTED', status: 400 },
  TooManyRequests: { code: 'TOOMANYREQUESTS', status: 429 },
  // The identity admin API (users, scope maps, tokens) is not distribution-spec's, but answers
  // through the same table: the spec has no code for these, UNSUPPORTED with the status says it.
  IdentityUnknown: { code: 'UNSUPPORTED', status: 404 },
  IdentityConflict: { code: 'UNSUPPORTED', status: 409 },
  IdentityInvalid: { code: 'UNSUPPORTED', status: 400 },
  // The blob store refused a write (a read-only filesystem, no permission, an I/O error). The
  // spec has no code for the registry's own failure; Distribution answers any storage driver
  // error with UNKNOWN and 500, and so does this.
  StorageFailed: { code: 'UNKNOWN', status: 500 },
  // No space (or quota) left for a write: 507 Insufficient Storage (RFC 4918 §11.5: "unable to
  // store the representation needed to successfully complete the request") says so exactly,
  // where a 503 would invite clients to retry against a disk that stays full.
  StorageFull: { code: 'UNKNOWN', status: 507 },
  // The global router (services/router) has no region it may send the request to: every
  // region is unhealthy, switched off for routing or not yet active. 503 because it passes:
  // a region that answers its health probes again takes requests at once.
  RegionUnavailable: { code: 'UNKNOWN', status: 503 },
  // The region the router chose failed before answering (refused, reset, timed out), and so did
  // the one retry, or the request could not be retried (its body was already on its way).
  RegionFailed: { code: 'UNKNOWN', status: 502 },
  Unknown: { code: 'UNKNOWN', status: 500 },
} as const satisfies Record<string, { code: OciErrorCode; status: number }>;

export type ErrorKind = keyof typeof ERROR_TABLE;

function errorClass<K extends ErrorKind>(kind: K) {
  return class extends RegistryError {
    /** Answered to the client and not logged (see RegistryError's constructor). */
    static readonly answeredOnly = ERROR_TABLE[kind].status < 500;
    readonly kind: K = kind;
  };
}

export class BlobUnknownError extends errorClass('BlobUnknown') {}
export class BlobUploadInvalidError extends errorClass('BlobUploadInvalid') {}
export class UploadRangeInvalidError extends errorClass('UploadRangeInvalid') {}
export class BlobUploadUnknownError extends errorClass('BlobUploadUnknown') {}
export class DigestInvalidError extends errorClass('DigestInvalid') {}
export class ManifestBlobUnknownError extends errorClass('ManifestBlobUnknown') {}
export class ManifestInvalidError extends errorClass('ManifestInvalid') {}
export class ManifestTooLargeError extends errorClass('ManifestTooLarge') {}
export class ManifestUnknownError extends errorClass('ManifestUnknown') {}
export class ManifestNotAcceptableError extends errorClass('ManifestNotAcceptable') {}
export class ManifestReferencedError extends errorClass('ManifestReferenced') {}
export class TagInvalidError extends errorClass('TagInvalid') {}
export class NameInvalidError extends errorClass('NameInvalid') {}
export class NameUnknownError extends errorClass('NameUnknown') {}
export class SizeInvalidError extends errorClass('SizeInvalid') {}
export class UnsupportedError extends errorClass('Unsupported') {}
export class RouteNotFoundError extends errorClass('RouteNotFound') {}
export class PaginationInvalidError extends errorClass('PaginationInvalid') {}
export class DeniedError extends errorClass('Denied') {}
export class IdentityUnknownError extends errorClass('IdentityUnknown') {}
export class IdentityConflictError extends errorClass('IdentityConflict') {}
export class IdentityInvalidError extends errorClass('IdentityInvalid') {}

/**
 * No credentials, or none that hold (distribution-spec v1.1 "Error Codes", UNAUTHORIZED). The
 * challenge is the `WWW-Authenticate` value telling the client where to get a token and for what
 * scope (Docker token spec, "How to authenticate"); the error middleware sends it.
 */
export class UnauthorizedError extends errorClass('Unauthorized') {
  constructor(
    message: string,
    readonly challenge: string,
  ) {
    super(message);
  }
}
/**
 * Too many failed sign-ins for a name or from an address (distribution-spec v1.1 "Error Codes",
 * TOOMANYREQUESTS). The error middleware sends `retryAfterSeconds` as `Retry-After` (RFC 9110
 * §10.2.3), so a client knows when trying again can succeed.
 */
export class TooManyRequestsError extends errorClass('TooManyRequests') {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
export class RegionUnavailableError extends errorClass('RegionUnavailable') {}
export class RegionFailedError extends errorClass('RegionFailed') {}

/**
 * A write the blob store could not make (StorageFailed, StorageFull). The response carries the
 * message, which names the system's error code but no path; the log gets `path` (where the
 * write failed, in the storage driver's terms) and `cause` (the system's error) as well.
 */
function storageErrorClass<K extends 'StorageFailed' | 'StorageFull'>(kind: K) {
  return class extends errorClass(kind) {
    constructor(
      message: string,
      /** The system's error code: EROFS, ENOSPC, EACCES, EIO… */
      readonly systemCode: string,
      readonly path: string,
      cause: unknown,
    ) {
      super(message);
      this.cause = cause;
    }
  };
}

export class StorageFailedError extends storageErrorClass('StorageFailed') {}
export class StorageFullError extends storageErrorClass('StorageFull') {}

/** A blob GET whose Range cannot be served: the caller needs the size for `Content-Range: bytes *\/size`. */
export class BlobRangeNotSatisfiableError extends errorClass('BlobRangeNotSatisfiable') {
  constructor(readonly size: number) {
    super(`requested range not satisfiable for a blob of ${size} bytes`);
  }
}

export interface OciErrorBody {
  errors: Array<{ code: OciErrorCode; message: string; detail?: unknown }>;
}

export interface OciErrorResponse {
  status: number;
  body: OciErrorBody;
  /** True when the error is not a known RegistryError: it must be logged with the trace. */
  unexpected: boolean;
}

/** The single translation from any thrown value to the OCI error response. */
export function toOciError(err: unknown): OciErrorResponse {
  if (err instanceof RegistryError) {
    const { code, status } = ERROR_TABLE[err.kind];
    const entry: OciErrorBody['errors'][number] = { code, message: err.message || OCI_ERROR_MESSAGES[code] };
    if (err.detail !== undefined) entry.detail = err.detail;
    return { status, body: { errors: [entry] }, unexpected: false };
  }
  return { status: 500, body: { errors: [{ code: 'UNKNOWN', message: OCI_ERROR_MESSAGES.UNKNOWN }] }, unexpected: true };
}

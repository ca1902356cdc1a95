/**
 * The one error model (CONTRIBUTING.md, 'Errors'): typed errors translated by toOciError into
 * the body of distribution-spec v1.1 "Error Codes": `{"errors":[{"code","message","detail"}]}`.
 */
import { describe, expect, it } from 'vitest';
import {
  BlobRangeNotSatisfiableError,
  BlobUnknownError,
  BlobUploadInvalidError,
  BlobUploadUnknownError,
  DigestInvalidError,
  ERROR_TABLE,
  ManifestBlobUnknownError,
  ManifestInvalidError,
  ManifestNotAcceptableError,
  ManifestReferencedError,
  ManifestTooLargeError,
  ManifestUnknownError,
  NameInvalidError,
  NameUnknownError,
  OCI_ERROR_MESSAGES,
  PaginationInvalidError,
  UnauthorizedError,
  DeniedError,
  IdentityUnknownError,
  IdentityConflictError,
  IdentityInvalidError,
  RegionFailedError,
  RegionUnavailableError,
  RegistryError,
  RouteNotFoundError,
  SizeInvalidError,
  StorageFailedError,
  StorageFullError,
  TagInvalidError,
  TooManyRequestsError,
  UnsupportedError,
  UploadRangeInvalidError,
  toOciError,
  type ErrorKind,
} from './errors.js';

/** distribution-spec v1.1 "Error Codes": code-1 … code-14, the only codes a registry may send. */
const SPEC_ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
] as const;

/** Every concrete error class with the code and status it must be answered with. */
const CASES: Array<{ error: RegistryError; kind: ErrorKind; code: string; status: number }> = [
  // distribution-spec v1.1 "Pulling blobs": a missing blob is 404 BLOB_UNKNOWN.
  { error: new BlobUnknownError('no such blob'), kind: 'BlobUnknown', code: 'BLOB_UNKNOWN', status: 404 },
  { error: new BlobUploadInvalidError('bad body'), kind: 'BlobUploadInvalid', code: 'BLOB_UPLOAD_INVALID', status: 400 },
  // distribution-spec v1.1 "Pushing a blob in chunks": an out-of-order chunk is 416.
  { error: new UploadRangeInvalidError('out of order'), kind: 'UploadRangeInvalid', code: 'BLOB_UPLOAD_INVALID', status: 416 },
  { error: new BlobRangeNotSatisfiableError(10), kind: 'BlobRangeNotSatisfiable', code: 'UNSUPPORTED', status: 416 },
  { error: new BlobUploadUnknownError('gone'), kind: 'BlobUploadUnknown', code: 'BLOB_UPLOAD_UNKNOWN', status: 404 },
  // distribution-spec v1.1 "Pushing blobs": a digest mismatch is 400 DIGEST_INVALID.
  { error: new DigestInvalidError('mismatch'), kind: 'DigestInvalid', code: 'DIGEST_INVALID', status: 400 },
  { error: new ManifestBlobUnknownError('missing layer'), kind: 'ManifestBlobUnknown', code: 'MANIFEST_BLOB_UNKNOWN', status: 400 },
  { error: new ManifestInvalidError('bad json'), kind: 'ManifestInvalid', code: 'MANIFEST_INVALID', status: 400 },
  // distribution-spec v1.1 "Pushing manifests": a manifest over the limit SHOULD be 413.
  { error: new ManifestTooLargeError('too big'), kind: 'ManifestTooLarge', code: 'SIZE_INVALID', status: 413 },
  // distribution-spec v1.1 "Pulling manifests": a missing manifest is 404 MANIFEST_UNKNOWN.
  { error: new ManifestUnknownError('no such manifest'), kind: 'ManifestUnknown', code: 'MANIFEST_UNKNOWN', status: 404 },
  { error: new ManifestNotAcceptableError('not acceptable'), kind: 'ManifestNotAcceptable', code: 'MANIFEST_UNKNOWN', status: 404 },
  { error: new ManifestReferencedError('listed by an index'), kind: 'ManifestReferenced', code: 'UNSUPPORTED', status: 409 },
  { error: new TagInvalidError('bad tag'), kind: 'TagInvalid', code: 'MANIFEST_INVALID', status: 400 },
  { error: new NameInvalidError('bad name'), kind: 'NameInvalid', code: 'NAME_INVALID', status: 400 },
  { error: new NameUnknownError('no repo'), kind: 'NameUnknown', code: 'NAME_UNKNOWN', status: 404 },
  { error: new SizeInvalidError('short'), kind: 'SizeInvalid', code: 'SIZE_INVALID', status: 400 },
  // distribution-spec v1.1 "Deleting blobs"/"Deleting manifests": a disabled operation is 405.
  { error: new UnsupportedError('disabled'), kind: 'Unsupported', code: 'UNSUPPORTED', status: 405 },
  { error: new RouteNotFoundError('no route'), kind: 'RouteNotFound', code: 'UNSUPPORTED', status: 404 },
  { error: new PaginationInvalidError('bad n'), kind: 'PaginationInvalid', code: 'UNSUPPORTED', status: 400 },
  { error: new UnauthorizedError('no credentials', 'Bearer realm="x"'), kind: 'Unauthorized', code: 'UNAUTHORIZED', status: 401 },
  { error: new DeniedError('not yours'), kind: 'Denied', code: 'DENIED', status: 403 },
  // distribution-spec v1.1 "Error Codes": TOOMANYREQUESTS, here for too many failed sign-ins.
  { error: new TooManyRequestsError('too many failed sign-ins', 60), kind: 'TooManyRequests', code: 'TOOMANYREQUESTS', status: 429 },
  { error: new IdentityUnknownError('no such token'), kind: 'IdentityUnknown', code: 'UNSUPPORTED', status: 404 },
  { error: new IdentityConflictError('exists'), kind: 'IdentityConflict', code: 'UNSUPPORTED', status: 409 },
  { error: new IdentityInvalidError('bad pattern'), kind: 'IdentityInvalid', code: 'UNSUPPORTED', status: 400 },
  // No spec code names the registry's own failure: UNKNOWN, as Distribution answers; no space is 507 (RFC 4918).
  { error: new StorageFailedError('read-only', 'EROFS', '/data/x', new Error('EROFS')), kind: 'StorageFailed', code: 'UNKNOWN', status: 500 },
  { error: new StorageFullError('full', 'ENOSPC', '/data/x', new Error('ENOSPC')), kind: 'StorageFull', code: 'UNKNOWN', status: 507 },
  // The global router: no region may serve now (503, it passes), or the chosen ones failed (502).
  { error: new RegionUnavailableError('no region'), kind: 'RegionUnavailable', code: 'UNKNOWN', status: 503 },
  { error: new RegionFailedError('refused'), kind: 'RegionFailed', code: 'UNKNOWN', status: 502 },
];

describe('toOciError', () => {
  it.each(CASES.map((c) => [c.error.constructor.name, c] as const))(
    '%s gets its ERROR_TABLE code and status (distribution-spec v1.1 "Error Codes")',
    (_name, { error, kind, code, status }) => {
      expect(error.kind).toBe(kind);
      expect(ERROR_TABLE[kind]).toEqual({ code, status });
      const response = toOciError(error);
      expect(response.status).toBe(status);
      expect(response.unexpected).toBe(false);
      expect(response.body).toEqual({ errors: [{ code, message: error.message }] });
      expect(Object.keys(response.body.errors[0]!)).toEqual(['code', 'message']);
    },
  );

  it('covers every ERROR_TABLE row but the Unknown fallback with a class', () => {
    const covered = new Set(CASES.map((c) => c.kind));
    const uncovered = (Object.keys(ERROR_TABLE) as ErrorKind[]).filter((kind) => !covered.has(kind));
    expect(uncovered).toEqual(['Unknown']);
  });

  it('names error instances after their class and keeps them Errors', () => {
    const err = new ManifestInvalidError('x');
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.name).toBe('ManifestInvalidError');
  });

  // CONTRIBUTING.md, 'Errors': only unexpected errors and storage failures (5xx) are logged.
  it.each(CASES.map((c) => [c.error.constructor.name, c] as const))('%s carries a stack only when it is answered 5xx', (_name, { error, status }) => {
    expect(error.stack).toMatch(new RegExp(`^${error.name}: `));
    expect(/\n\s+at /.test(error.stack ?? '')).toBe(status >= 500);
  });

  it('leaves Error.stackTraceLimit as it was after making an error without a stack', () => {
    const before = Error.stackTraceLimit;
    new BlobUnknownError('x');
    expect(Error.stackTraceLimit).toBe(before);
    expect(new Error('plain').stack).toMatch(/\n\s+at /);
  });

  // distribution-spec v1.1 "Error Codes": `detail` is OPTIONAL structured data.
  it('passes detail through when given', () => {
    const detail = { offset: 42 };
    const response = toOciError(new UploadRangeInvalidError('chunk out of order', detail));
    expect(response.body).toEqual({ errors: [{ code: 'BLOB_UPLOAD_INVALID', message: 'chunk out of order', detail }] });
  });

  it('keeps falsy details that are not undefined', () => {
    expect(toOciError(new SizeInvalidError('m', null)).body.errors[0]).toHaveProperty('detail', null);
    expect(toOciError(new SizeInvalidError('m', 0)).body.errors[0]).toHaveProperty('detail', 0);
  });

  it("uses the spec's message when the error has none", () => {
    expect(toOciError(new BlobUnknownError()).body).toEqual({
      errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }],
    });
    expect(toOciError(new NameUnknownError('')).body.errors[0]?.message).toBe('repository name not known to registry');
  });

  it('gives BlobRangeNotSatisfiableError the blob size', () => {
    const err = new BlobRangeNotSatisfiableError(1234);
    expect(err.size).toBe(1234);
    expect(toOciError(err).body.errors[0]?.message).toContain('1234');
  });

  // CONTRIBUTING.md, 'Errors': unknown errors become UNKNOWN/500, flagged to be logged, and
  // leak nothing.
  it.each([
    ['an Error', new Error('password=hunter2 at /srv/secret/path')],
    ['a TypeError', new TypeError('Cannot read properties of undefined (reading "secret")')],
    ['a string', 'connection string postgres://user:secret@db'],
    ['undefined', undefined],
    ['null', null],
    ['an object', { message: 'secret', kind: 'BlobUnknown' }],
  ])('turns %s into UNKNOWN/500 with unexpected=true and no leaked message', (_label, thrown) => {
    const response = toOciError(thrown);
    expect(response.status).toBe(500);
    expect(response.unexpected).toBe(true);
    expect(response.body).toEqual({ errors: [{ code: 'UNKNOWN', message: 'unknown error' }] });
    expect(JSON.stringify(response.body)).not.toMatch(/secret|hunter2/);
  });
});

describe('ERROR_TABLE', () => {
  // distribution-spec v1.1 "Error Codes": "The code field MUST be one of the following".
  // The one exception is the registry's own failure: UNKNOWN with a 5xx (CONTRIBUTING.md,
  // 'Errors'; Distribution's errcode.ErrorCodeUnknown), a code outside the spec's list, for an
  // unexpected error, for a write the storage refused, and for the global router finding no
  // region able to answer.
  const SERVER_FAULTS: readonly string[] = ['Unknown', 'StorageFailed', 'StorageFull', 'RegionUnavailable', 'RegionFailed'];

  it('uses only distribution-spec error codes, except UNKNOWN for the registry\'s own failures', () => {
    for (const [kind, { code }] of Object.entries(ERROR_TABLE)) {
      if (SERVER_FAULTS.includes(kind)) {
        expect(code, kind).toBe('UNKNOWN');
        continue;
      }
      expect(SPEC_ERROR_CODES, `${kind} -> ${code}`).toContain(code);
    }
  });

  it('uses 4xx statuses for every client error and 5xx only for the registry\'s own failures', () => {
    for (const [kind, { status }] of Object.entries(ERROR_TABLE)) {
      expect(status, kind).toBeGreaterThanOrEqual(SERVER_FAULTS.includes(kind) ? 500 : 400);
      expect(status, kind).toBeLessThan(SERVER_FAULTS.includes(kind) ? 600 : 500);
    }
  });

  it('answers the auth and rate-limit rows with the statuses the spec names', () => {
    expect(ERROR_TABLE.Unauthorized).toEqual({ code: 'UNAUTHORIZED', status: 401 });
    expect(ERROR_TABLE.Denied).toEqual({ code: 'DENIED', status: 403 });
    expect(ERROR_TABLE.TooManyRequests).toEqual({ code: 'TOOMANYREQUESTS', status: 429 });
    expect(ERROR_TABLE.Unknown).toEqual({ code: 'UNKNOWN', status: 500 });
  });

  // distribution-spec v1.1 "Error Codes": the message column.
  it("has the spec's message for every spec code", () => {
    expect(OCI_ERROR_MESSAGES).toMatchObject({
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
    });
  });
});

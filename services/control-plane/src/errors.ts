/**
 * The control plane's errors, one table (CONTRIBUTING.md, 'Errors', applied to the admin API):
 * domain code throws a typed error naming its row, and the one error middleware
 * (http/error-handler.ts) writes `{"error":{"code","message","detail"}}` with the row's status.
 * Handlers never choose a status.
 */
export const API_ERROR_TABLE = {
  INVALID_REQUEST: 400,
  NOT_FOUND: 404,
  REGION_UNKNOWN: 404,
  CHANGE_UNKNOWN: 404,
  REPLICATION_UNKNOWN: 404,
  REFERENCE_UNKNOWN: 404,
  METHOD_NOT_ALLOWED: 405,
  REGION_EXISTS: 409,
  BODY_TOO_LARGE: 413,
  INTERNAL: 500,
  NOT_SUPPORTED: 501,
  NOT_READY: 503,
} as const;
export type ApiErrorCode = keyof typeof API_ERROR_TABLE;

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }

  get status(): number {
    return API_ERROR_TABLE[this.code];
  }
}

/** A request body, path or query that breaks the API's rules; the message says which part and why. */
export class InvalidRequestError extends ApiError {
  override name = 'InvalidRequestError';
  constructor(message: string, detail?: unknown) {
    super('INVALID_REQUEST', message, detail);
  }
}

export class RegionUnknownError extends ApiError {
  override name = 'RegionUnknownError';
  constructor(region: string) {
    super('REGION_UNKNOWN', `no region named "${region}" is registered`, { region });
  }
}

export class RegionExistsError extends ApiError {
  override name = 'RegionExistsError';
  constructor(region: string, state: string) {
    super('REGION_EXISTS', `region "${region}" is already registered (state ${state}); remove it first to register it again`, { region, state });
  }
}

export class ChangeUnknownError extends ApiError {
  override name = 'ChangeUnknownError';
  constructor(id: string) {
    super('CHANGE_UNKNOWN', `no change with id ${id}`, { id });
  }
}

export class ReplicationUnknownError extends ApiError {
  override name = 'ReplicationUnknownError';
  constructor(changeId: string, region: string) {
    super('REPLICATION_UNKNOWN', `change ${changeId} was never meant for region "${region}"`, { changeId, region });
  }
}

/** A tag or manifest the merged catalog does not hold (never pushed, or deleted). */
export class ReferenceUnknownError extends ApiError {
  override name = 'ReferenceUnknownError';
  constructor(repository: string, reference: string) {
    super('REFERENCE_UNKNOWN', `the catalog holds no ${reference.includes(':') ? 'manifest' : 'tag'} ${reference} in repository ${repository}`, { repository, reference });
  }
}

export class NotSupportedError extends ApiError {
  override name = 'NotSupportedError';
  constructor(message: string) {
    super('NOT_SUPPORTED', message);
  }
}

/** `/readyz`: a part the control plane needs does not answer. */
export class NotReadyError extends ApiError {
  override name = 'NotReadyError';
  constructor(failing: Record<string, string>) {
    super('NOT_READY', `not ready: ${Object.entries(failing).map(([part, why]) => `${part} (${why})`).join(', ')}`, failing);
  }
}

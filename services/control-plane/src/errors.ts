/**
 * The control plane's errors, one table (CONTRIBUTING.md, 'Errors', applied to the admin API):
 * domain code throws a typed error naming its row, and the one error middleware
 * (http/error-handler.ts) writes `{"error":{"code","message","detail"}}` with the row's status.
 * Handlers never choose a status.
 */
export const API_ERROR_TABLE = {
  INVALID_REQUEST: 400,
  IDENTITY_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  IDENTITY_UNKNOWN: 404,
  IDENTITY_CONFLICT: 409,
  NOT_FOUND: 404,
  REGION_UNKNOWN: 404,
  CHANGE_UNKNOWN: 404,
  REPLICATION_UNKNOWN: 404,
  REFERENCE_UNKNOWN: 404,
  METHOD_NOT_ALLOWED: 405,
  REGION_EXISTS: 409,
  PURGE_RUNNING: 409,
  REGION_BUSY: 409,
  CONTENT_UNREPLICATED: 409,
  BODY_TOO_LARGE: 413,
  TOO_MANY_REQUESTS: 429,
  INTERNAL: 500,
  REGION_UNREACHABLE: 502,
  REGION_REFUSED: 502,
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

/** A purge of the region is under way: it cannot be purged again, nor registered, meanwhile. */
export class PurgeRunningError extends ApiError {
  override name = 'PurgeRunningError';
  constructor(region: string) {
    super('PURGE_RUNNING', `region "${region}" is being purged right now; wait for that purge to end`, { region });
  }
}

/** Replication jobs that started before the region drained still write to it: a purge would race them. */
export class RegionBusyError extends ApiError {
  override name = 'RegionBusyError';
  constructor(region: string, running: number) {
    super(
      'REGION_BUSY',
      `region "${region}" still has ${running} replication jobs running against it (started before it drained); nothing purged: purge again once they end`,
      { region, running },
    );
  }
}

/**
 * A purge that would delete content no other region holds: items only this region has (as far
 * as the control plane has recorded), and changes of its own it never relayed.
 */
export class ContentUnreplicatedError extends ApiError {
  override name = 'ContentUnreplicatedError';
  constructor(region: string, detail: { items: string[]; total: number; unrelayed: number }) {
    const parts = [];
    if (detail.total > 0) parts.push(`${detail.total} catalog items no other active region holds (${detail.items.slice(0, 3).join(', ')}${detail.total > 3 ? ', ...' : ''})`);
    if (detail.unrelayed > 0) parts.push(`${detail.unrelayed} changes of its own it has not relayed to the control plane`);
    super(
      'CONTENT_UNREPLICATED',
      `region "${region}" holds ${parts.join(' and ')}: nothing purged. Wait for replication (meridian replication status), or purge with force to delete them for good`,
      { region, ...detail },
    );
  }
}

/** A region that could not be reached to purge its data; it stays draining. */
export class RegionUnreachableError extends ApiError {
  override name = 'RegionUnreachableError';
  constructor(region: string, address: string, reason: string) {
    super(
      'REGION_UNREACHABLE',
      `region "${region}" could not be reached at ${address} to purge its data (${reason}); it stays draining: purge again once it is reachable, or leave it removed without purge`,
      { region, address },
    );
  }
}

/** A region that answered a purge with an error; it stays draining. */
export class RegionRefusedError extends ApiError {
  override name = 'RegionRefusedError';
  constructor(region: string, reason: string) {
    super('REGION_REFUSED', `region "${region}" refused to purge its data: ${reason}; it stays draining`, { region });
  }
}

/** `/readyz`: a part the control plane needs does not answer. */
export class NotReadyError extends ApiError {
  override name = 'NotReadyError';
  constructor(failing: Record<string, string>) {
    super('NOT_READY', `not ready: ${Object.entries(failing).map(([part, why]) => `${part} (${why})`).join(', ')}`, failing);
  }
}

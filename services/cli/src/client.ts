import type { PurgeCounts, ReferenceStatus, RegionRecord } from '@meridian/proto';
import { UntrustedCertificateError, type ClusterFetch } from '@meridian/proto/cluster-http';
import { CommandError } from './errors.js';

/** How long one request may take: adding a region queues its whole backfill before answering. */
const REQUEST_TIMEOUT_MS = 120_000;

/**
 * A purge deletes page after page before answering. Past this (fetch's own wait for an answer's
 * headers) the command stops waiting; the purge goes on in the control plane, and the region
 * leaves `meridian region list` when it is done.
 */
const PURGE_TIMEOUT_MS = 300_000;

/** The control plane's answer to a purge (DELETE /api/v1/regions/NAME?purge=true). */
export interface PurgeReport {
  region: string;
  deleted: PurgeCounts;
  replicationsRemoved: number;
}

export type StatusAnswer = ({ repository: string; reference: string } & ReferenceStatus) | { repository: string; tags: ReferenceStatus[] };

/**
 * The admin API of the control plane (`/api/v1`). Every failure is a CommandError whose message
 * is one line saying what was tried: the server's own message when it answered with an error,
 * else what kept the request from being answered.
 */
export class ControlPlaneClient {
  private readonly authorization: string | undefined;

  /** `credentials`: the administrator's, for a control plane with MERIDIAN_AUTH=on (its default). */
  constructor(
    readonly server: string,
    /** The command's HTTP client (clusterHttpFor): trusts --ca or MERIDIAN_TLS_CA. */
    private readonly fetch: ClusterFetch,
    credentials?: { user: string; password: string },
  ) {
    this.authorization = credentials ? `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}` : undefined;
  }

  listRegions(): Promise<{ regions: RegionRecord[] }> {
    return this.request('GET', '/api/v1/regions');
  }

  addRegion(region: { name: string; http: string; grpc: string; lat: number; lon: number; cacheBytes?: number }): Promise<RegionRecord> {
    return this.request('POST', '/api/v1/regions', region);
  }

  removeRegion(name: string): Promise<RegionRecord> {
    return this.request('DELETE', `/api/v1/regions/${encodeURIComponent(name)}`);
  }

  /** Answers once the region has deleted everything, which takes as long as its content needs. */
  purgeRegion(name: string, force: boolean): Promise<PurgeReport> {
    return this.request('DELETE', `/api/v1/regions/${encodeURIComponent(name)}?purge=true${force ? '&force=true' : ''}`, undefined, PURGE_TIMEOUT_MS);
  }

  setRouting(name: string, enabled: boolean): Promise<RegionRecord> {
    return this.request('PUT', `/api/v1/regions/${encodeURIComponent(name)}/routing`, { enabled });
  }

  status(repository: string, reference?: string): Promise<StatusAnswer> {
    const query = new URLSearchParams({ repository, ...(reference === undefined ? {} : { reference }) });
    return this.request('GET', `/api/v1/replication/status?${query}`);
  }

  private async request<T>(method: string, path: string, body?: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    const what = `${method} ${this.server}${path}`;
    let response: Response;
    try {
      response = await this.fetch(`${this.server}${path}`, {
        method,
        headers: { ...(this.authorization ? { authorization: this.authorization } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new CommandError(unreachable(this.server, err, timeoutMs));
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.ok && parsed !== undefined) return parsed as T;
    const error = (parsed as { error?: { message?: unknown } } | undefined)?.error;
    if (response.status === 401) {
      const advice = this.authorization ? 'check --user and --password or MERIDIAN_ADMIN_PASSWORD' : 'pass --password or set MERIDIAN_ADMIN_PASSWORD (unless it was set, the control plane made the password into admin-password in its MERIDIAN_DATA_DIR)';
      throw new CommandError(`the control plane at ${this.server} asks for the administrator's credentials (${typeof error?.message === 'string' ? error.message : 'unauthorized'}): ${advice}`);
    }
    if (typeof error?.message === 'string') throw new CommandError(error.message);
    throw new CommandError(`${what} answered ${response.status} ${response.statusText} without a control plane answer: is ${this.server} the control plane?`);
  }
}

function unreachable(server: string, err: unknown, timeoutMs: number): string {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  if (error.name === 'TimeoutError') return `the control plane at ${server} did not answer within ${timeoutMs / 1000} s`;
  if (error instanceof UntrustedCertificateError) return error.message;
  const reason = error.cause?.code ?? error.cause?.message ?? error.message;
  return `cannot reach the control plane at ${server} (${reason}): start it or pass --server`;
}

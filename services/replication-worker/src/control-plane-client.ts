import { RegionListSchema, type RegionRecord, type ReplicationOutcome } from '@meridian/proto';
import type { ClusterFetch } from '@meridian/proto/cluster-http';
import type { JudgedError } from './grpc-errors.js';

/**
 * A request to the control plane that did not succeed. Unreachable or answering 5xx: the job
 * waits for it without spending an attempt. A refusal (4xx) is the job's own failure.
 */
export class ControlPlaneError extends Error implements JudgedError {
  readonly outsideTheJob: boolean;

  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.outsideTheJob = retryable;
  }
}

/**
 * The two things the worker asks of the control plane's admin API: the regions (to find the
 * target's state and where to copy from) and recording a job's outcome. Every call has a
 * timeout, so a control plane that hangs fails the attempt instead of holding a job slot.
 */
export class ControlPlaneClient {
  constructor(
    private readonly baseUrl: string,
    /** The process's HTTP client (ClusterHttp.fetch): trusts the cluster's authority. */
    private readonly fetch: ClusterFetch,
    private readonly timeoutMs = 10_000,
    /** Headers proving the worker to the control plane (a service token), when it asks for them. */
    private readonly headers: () => Promise<Record<string, string>> = async () => ({}),
  ) {}

  /** `GET /api/v1/regions`. */
  async listRegions(): Promise<RegionRecord[]> {
    const response = await this.request('GET', '/api/v1/regions');
    const parsed = RegionListSchema.safeParse(await response.json());
    if (!parsed.success) throw new ControlPlaneError(`GET /api/v1/regions answered a body that is not a region list: ${parsed.error.message}`, true);
    return parsed.data.regions;
  }

  /**
   * `GET /readyz`: resolves when the control plane answers it with 200, which it does while its
   * Postgres and Redis answer. The worker can finish no job without it (every job asks it for the
   * regions and reports its outcome to it), so the worker's own /readyz asks too.
   */
  async ready(): Promise<void> {
    const response = await this.request('GET', '/readyz');
    await response.body?.cancel();
  }

  /** `POST /api/v1/replication/:changeId/:region`: idempotent on the control plane's side, so a retried report is harmless. */
  async report(changeId: string, region: string, outcome: ReplicationOutcome): Promise<void> {
    await this.request('POST', `/api/v1/replication/${encodeURIComponent(changeId)}/${encodeURIComponent(region)}`, outcome);
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetch(this.baseUrl + path, {
        method,
        headers: { ...(await this.headers()), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new ControlPlaneError(`${method} ${path}: control plane unreachable: ${(err as Error).cause ?? (err as Error).message}`, true);
    }
    if (!response.ok) {
      const text = (await response.text().catch(() => '')).slice(0, 500);
      throw new ControlPlaneError(`${method} ${path}: control plane answered ${response.status} ${text}`, response.status >= 500 || response.status === 429);
    }
    return response;
  }
}

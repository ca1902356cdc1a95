import { RegionListSchema, type RegionRecord, type ReplicationOutcome } from '@meridian/proto';
import { ControlPlaneRequestError, type ControlPlaneHttp } from '@meridian/proto/control-plane-http';
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
 * timeout (ControlPlaneHttp's), so a control plane that hangs fails the attempt instead of
 * holding a job slot.
 */
export class ControlPlaneClient {
  constructor(private readonly http: ControlPlaneHttp) {}

  /** `GET /api/v1/regions`. */
  async listRegions(): Promise<RegionRecord[]> {
    const parsed = RegionListSchema.safeParse(await this.request(() => this.http.json('GET', '/api/v1/regions')));
    if (!parsed.success) throw new ControlPlaneError(`GET /api/v1/regions answered a body that is not a region list: ${parsed.error.message}`, true);
    return parsed.data.regions;
  }

  /**
   * `GET /readyz`: resolves when the control plane answers it with 200, which it does while its
   * Postgres and Redis answer. The worker can finish no job without it (every job asks it for the
   * regions and reports its outcome to it), so the worker's own /readyz asks too.
   */
  async ready(): Promise<void> {
    await this.request(() => this.http.send('GET', '/readyz'));
  }

  /** `POST /api/v1/replication/:changeId/:region`: idempotent on the control plane's side, so a retried report is harmless. */
  async report(changeId: string, region: string, outcome: ReplicationOutcome): Promise<void> {
    await this.request(() => this.http.send('POST', `/api/v1/replication/${encodeURIComponent(changeId)}/${encodeURIComponent(region)}`, outcome));
  }

  /** The request's failure judged for the job: waiting for the control plane, or the job's own. */
  private async request<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof ControlPlaneRequestError) throw new ControlPlaneError(err.message, err.transient);
      throw err;
    }
  }
}

import type { Logger } from 'pino';
import { UntrustedCertificateError, type ClusterHttp } from '@meridian/proto/cluster-http';
import { RegionListSchema, type RegionRecord } from '@meridian/proto/jobs';

export interface RegionDirectoryOptions {
  /** The control plane's admin API, e.g. http://127.0.0.1:5100. */
  controlPlaneUrl: string;
  /** How often the list is read again. */
  refreshIntervalMs: number;
  /** How long one read may take. */
  timeoutMs: number;
  /** The router's HTTP client (its pool, and what a refused certificate is reported as). */
  http: Pick<ClusterHttp, 'dispatcher' | 'explain'>;
  logger: Logger;
  /** Headers proving the router to the control plane (a service token), when it asks for them. */
  headers?: () => Promise<Record<string, string>>;
  /** Called after every read that changed the list (regions, endpoints, states or switches). */
  onChange?: (regions: readonly RegionRecord[]) => void;
}

/**
 * The cluster's regions as the control plane lists them, read at start and every
 * `refreshIntervalMs`. When the control plane cannot be read, the last list it gave stays in
 * force: the router keeps sending clients where it did, and the regions serve them without the
 * control plane. An outage is logged once when it starts and once when it ends.
 */
export class RegionDirectory {
  private current: readonly RegionRecord[] = [];
  private fingerprint = '';
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  /** When the last read succeeded (ms since the epoch); undefined before the first. */
  private readAt: number | undefined;
  /** Why the last read failed; undefined while reads succeed. */
  private failure: string | undefined;

  constructor(private readonly options: RegionDirectoryOptions) {}

  /** The last list read; empty before the first read succeeds. */
  regions(): readonly RegionRecord[] {
    return this.current;
  }

  /** Whether a list was ever read, when, and why the latest read failed (if it did). */
  status(): { loaded: boolean; readAt: number | undefined; error: string | undefined } {
    return { loaded: this.readAt !== undefined, readAt: this.readAt, error: this.failure };
  }

  /** Reads the list once (never throws: a failure is kept in status()), then every interval. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads the list now; a read already under way is shared. */
  refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async read(): Promise<void> {
    const { controlPlaneUrl, timeoutMs, http, logger } = this.options;
    let regions: RegionRecord[];
    try {
      const url = new URL(`${controlPlaneUrl}/api/v1/regions`);
      const response = await http.dispatcher.request({
        origin: url.origin,
        path: url.pathname,
        method: 'GET',
        headers: (await this.options.headers?.()) ?? {},
        // A connection of its own each time: a read every few seconds needs no pool, and a kept
        // connection would hold up a control plane that is shutting down until it times out.
        reset: true,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await response.body.text();
      if (response.statusCode !== 200) throw new Error(`answered ${response.statusCode}: ${text.slice(0, 200)}`);
      regions = RegionListSchema.parse(JSON.parse(text)).regions;
    } catch (err) {
      const reason = describeFailure(http.explain(controlPlaneUrl, err));
      if (this.failure === undefined) {
        logger.warn(
          { controlPlane: controlPlaneUrl, reason, regions: this.current.length },
          `cannot read the region list from the control plane (${reason}); routing goes on with the last list read`,
        );
      }
      this.failure = reason;
      return;
    }
    if (this.failure !== undefined) logger.info({ controlPlane: controlPlaneUrl }, 'region list read from the control plane again');
    this.failure = undefined;
    this.readAt = Date.now();
    const fingerprint = JSON.stringify(regions.map(({ name, http, lat, lon, state, routing }) => [name, http, lat, lon, state, routing]));
    if (fingerprint === this.fingerprint) return;
    this.fingerprint = fingerprint;
    this.current = regions;
    logger.info({ regions: regions.map(({ name, state, routing }) => ({ name, state, routing })) }, 'region list changed');
    this.options.onChange?.(regions);
  }
}

function describeFailure(err: unknown): string {
  const error = err as Error & { code?: string; cause?: { code?: string } };
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'no answer in time';
  if (error instanceof UntrustedCertificateError) return error.message;
  return error.cause?.code ?? error.code ?? error.message;
}

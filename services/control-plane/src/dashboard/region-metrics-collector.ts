import type { Logger } from 'pino';
import type { RegionRecord } from '@meridian/proto';
import type { ClusterFetch } from '@meridian/proto/cluster-http';
import type { RegionSample } from './figures.js';
import { readGatewayMetrics } from './gateway-metrics.js';

export interface RegionMetricsCollectorOptions {
  /** The registered regions (their gateways' base URLs), read at every round. */
  regions: { list(): Promise<RegionRecord[]> };
  /** Each region's replications pending (ReplicationStore.pendingByRegion). */
  backlog: () => Promise<Map<string, number>>;
  /** Each region's replication lag p99 over the last `windowSeconds` (absent: nothing applied). */
  lag: (windowSeconds: number) => Promise<Map<string, number>>;
  intervalMs: number;
  /** How much history each region keeps: `windowMs / intervalMs` samples at most. */
  windowMs: number;
  /** The process's HTTP client (ClusterHttp.fetch): trusts the cluster's authority. */
  fetch: ClusterFetch;
  logger: Logger;
}

/** The lag percentile of each sample is over what was applied this long before it. */
export const LAG_WINDOW_SECONDS = 300;
/** A `/metrics` larger than this is not read: it is not a gateway's (a few tens of KiB). */
const MAX_METRICS_BYTES = 4 * 1024 * 1024;

/**
 * Every `intervalMs`, for each registered region: asks its gateway's `/readyz` (is it up?) and
 * `/metrics` (requests, pull latency, errors, cache, storage), and reads its replication backlog
 * and lag from the database. Keeps the last `windowMs` of these samples per region, in memory and
 * bounded (a region removed from the list loses its samples), for the dashboard's cards and
 * sparklines. A gateway that is away, slow (the probe gives up after one interval, at most 5 s)
 * or without `/metrics` is a sample saying so, never an error: the round goes on with the others.
 */
export class RegionMetricsCollector {
  private readonly samples = new Map<string, RegionSample[]>();
  private readonly listeners = new Set<() => void>();
  private readonly capacity: number;
  private readonly timeoutMs: number;
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private stopped = true;

  constructor(private readonly options: RegionMetricsCollectorOptions) {
    this.capacity = Math.ceil(options.windowMs / options.intervalMs) + 1;
    this.timeoutMs = Math.min(options.intervalMs, 5000);
  }

  get intervalMs(): number {
    return this.options.intervalMs;
  }

  /** Collects now, then every interval (each round starting one interval after the last one started, or at once if it ran longer). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const loop = async () => {
      const started = Date.now();
      this.round = this.collect();
      await this.round;
      if (this.stopped) return;
      this.timer = setTimeout(loop, Math.max(0, this.options.intervalMs - (Date.now() - started)));
      this.timer.unref();
    };
    void loop();
  }

  /** Stops the rounds and waits for one under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
  }

  /** A region's samples, oldest first (empty for a region not collected yet). */
  samplesOf(region: string): readonly RegionSample[] {
    return this.samples.get(region) ?? [];
  }

  /** Calls `listener` after each round; returns what unsubscribes it. */
  onRound(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One round over every registered region. Never throws: a failure is logged and the round ends. */
  async collect(): Promise<void> {
    try {
      const [regions, backlog, lag] = await Promise.all([this.options.regions.list(), this.options.backlog(), this.options.lag(LAG_WINDOW_SECONDS)]);
      const at = Date.now();
      const samples = await Promise.all(regions.map((region) => this.sample(region, at, { backlog: backlog.get(region.name), lagP99Seconds: lag.get(region.name) ?? null })));
      const names = new Set(regions.map((region) => region.name));
      for (const name of this.samples.keys()) if (!names.has(name)) this.samples.delete(name);
      regions.forEach((region, i) => {
        const kept = this.samples.get(region.name) ?? [];
        kept.push(samples[i]!);
        if (kept.length > this.capacity) kept.splice(0, kept.length - this.capacity);
        this.samples.set(region.name, kept);
      });
    } catch (err) {
      // The database is away: there is nothing to list regions from. The next round tries again.
      this.options.logger.warn({ reason: (err as Error).message }, 'dashboard collection round failed');
    }
    for (const listener of this.listeners) listener();
  }

  private async sample(region: RegionRecord, at: number, replication: Pick<RegionSample, 'backlog' | 'lagP99Seconds'>): Promise<RegionSample> {
    const base = region.http.replace(/\/+$/, '');
    const [probe, metrics] = await Promise.all([this.get(`${base}/readyz`), this.get(`${base}/metrics`)]);
    const sample: RegionSample = { at, probe: 'unreachable', ...replication };
    if ('error' in probe) {
      sample.probeError = probe.error;
    } else {
      sample.probe = probe.status === 200 ? 'ready' : 'unready';
      if (probe.status !== 200) sample.probeError = `/readyz answered ${probe.status}`;
    }
    if ('text' in metrics && metrics.status === 200) {
      try {
        sample.gateway = readGatewayMetrics(metrics.text);
      } catch (err) {
        sample.metricsError = `/metrics is not in the Prometheus text format (${(err as Error).message})`;
      }
    } else {
      sample.metricsError = 'error' in metrics ? metrics.error : `/metrics answered ${metrics.status}`;
    }
    return sample;
  }

  /** GETs `url`: its status and text, or why there is none. */
  private async get(url: string): Promise<{ status: number; text: string } | { error: string }> {
    try {
      const response = await this.options.fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (response.status !== 200) {
        await response.body?.cancel();
        return { status: response.status, text: '' };
      }
      return { status: response.status, text: await readText(response, MAX_METRICS_BYTES) };
    } catch (err) {
      return { error: describeFetchError(err) };
    }
  }
}

/** The body as text, refusing one past `maxBytes` without reading the rest. */
async function readText(response: Response, maxBytes: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new Error(`answer larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** undici's "fetch failed" hides the reason in `cause` (ECONNREFUSED, a timeout, ...). */
function describeFetchError(err: unknown): string {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  if (error.name === 'TimeoutError') return 'no answer in time';
  return error.cause?.code ?? error.cause?.message ?? error.message;
}

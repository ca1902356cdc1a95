import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration } from 'prom-client';

export type { Counter, Gauge, Histogram } from 'prom-client';

/** The services that expose metrics; the value of the `service` label on every series. */
export type ServiceName = 'gateway' | 'control-plane' | 'replication-worker' | 'router';

export interface MetricsOptions {
  service: ServiceName;
  /** The region a regional process (a gateway) serves; cluster-wide services have none. */
  region?: string;
}

/** What every `meridian_http_*` series is labelled by: bounded values only (CONTRIBUTING.md, 'Naming'). */
export type HttpLabel = 'route' | 'method' | 'status';

/** Seconds: from a manifest served from cache to a multi-GiB upload on a slow link. */
const HTTP_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * One process's metrics: a registry of its own (never prom-client's global one, so two services
 * in one test process never share a series), with `service` and, in a region, `region` on every
 * series, Node's own process metrics, and the HTTP metrics every service with a port records.
 * Metric names follow `meridian_<subsystem>_<name>_<unit>`; the list is in the README
 * ("Observability").
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<HttpLabel>;
  readonly httpRequestDuration: Histogram<Exclude<HttpLabel, 'status'>>;

  constructor(readonly options: MetricsOptions) {
    this.registry.setDefaultLabels({ service: options.service, ...(options.region ? { region: options.region } : {}) });
    collectDefaultMetrics({ register: this.registry });
    this.httpRequests = this.counter({
      name: 'meridian_http_requests_total',
      help: 'HTTP requests answered, by route name, method and status code.',
      labelNames: ['route', 'method', 'status'],
    });
    this.httpRequestDuration = this.histogram({
      name: 'meridian_http_request_duration_seconds',
      help: 'Time from a request\'s headers to the end of its response, by route name and method.',
      labelNames: ['route', 'method'],
      buckets: HTTP_DURATION_BUCKETS,
    });
  }

  counter<L extends string = never>(config: Omit<CounterConfiguration<L>, 'registers'>): Counter<L> {
    return new Counter({ ...config, registers: [this.registry] });
  }

  gauge<L extends string = never>(config: Omit<GaugeConfiguration<L>, 'registers'>): Gauge<L> {
    return new Gauge({ ...config, registers: [this.registry] });
  }

  histogram<L extends string = never>(config: Omit<HistogramConfiguration<L>, 'registers'>): Histogram<L> {
    return new Histogram({ ...config, registers: [this.registry] });
  }

  /** The Prometheus text exposition of this process's series. */
  async exposition(): Promise<Exposition> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}

/** A `/metrics` body and its content type. */
export interface Exposition {
  contentType: string;
  text: string;
}

/** A connection pool as pg.Pool exposes its counts. */
export interface PoolCounts {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
}

/**
 * `meridian_db_pool_connections{state}`: the pool's connections (total, idle) and the queries
 * waiting for one, read at each scrape. Waiting above zero for long means the pool is too small.
 */
export function observeDatabasePool(metrics: Metrics, pool: PoolCounts): void {
  metrics.gauge({
    name: 'meridian_db_pool_connections',
    help: 'Database pool: connections open (total), idle, and requests waiting for a connection.',
    labelNames: ['state'],
    collect() {
      this.set({ state: 'total' }, pool.totalCount);
      this.set({ state: 'idle' }, pool.idleCount);
      this.set({ state: 'waiting' }, pool.waitingCount);
    },
  });
}

import { Metrics, type Counter } from '@meridian/telemetry';
import type { SlowClientCutReason } from './http/slow-clients.js';
import type { RegionHealth } from './regions/health-monitor.js';

/**
 * The router's Prometheus metrics: libs/telemetry's registry for the service (with the HTTP
 * metrics every service records) and the router's own series. Labelled by region and mode,
 * never by path, repository or digest (CONTRIBUTING.md, 'Naming').
 */
export interface RouterMetrics {
  metrics: Metrics;
  /** Counts one request sent to a region: a blob GET, which the region asks to redirect, or one proxied through. */
  routed(region: string, mode: 'redirect' | 'proxy'): void;
  /** Counts one proxied request retried on the next region after `region` failed before answering. */
  retried(region: string): void;
  /** Counts one slow client disconnected (SlowClientBudget), by why. */
  slowClientCut(reason: SlowClientCutReason): void;
}

export function createRouterMetrics(health: () => ReadonlyMap<string, RegionHealth>, slowClientBytes: () => number): RouterMetrics {
  const metrics = new Metrics({ service: 'router' });
  const routedTotal = metrics.counter({
    name: 'meridian_router_routed_total',
    help: 'Requests sent to a region, by region and mode (redirect: blob GETs the region is asked to redirect; proxy: the rest).',
    labelNames: ['target_region', 'mode'],
  });
  const retries = metrics.counter({
    name: 'meridian_router_retries_total',
    help: 'Proxied requests retried on the next region after the region named failed before answering.',
    labelNames: ['target_region'],
  });
  const slowClientsCut = metrics.counter({
    name: 'meridian_router_slow_clients_cut_total',
    help: 'Client connections cut while answers were held for them: reason budget (the process held too much for slow clients), deadline (the client took nothing for too long).',
    labelNames: ['reason'],
  });
  metrics.gauge({
    name: 'meridian_router_slow_client_buffer_bytes',
    help: 'Bytes of pipelined answers held in memory for clients that read slower than their regions answered.',
    collect() {
      this.set(slowClientBytes());
    },
  });
  metrics.gauge({
    name: 'meridian_region_healthy',
    help: '1 while the router counts the region healthy (its /readyz probes pass), else 0.',
    labelNames: ['target_region'],
    // Each worker of a supervised router probes for itself, and a scrape sums the workers'
    // series: the least of them says whether every worker routes to the region.
    aggregator: 'min',
    collect() {
      this.reset();
      for (const [name, state] of health()) this.set({ target_region: name }, state.healthy ? 1 : 0);
    },
  });
  // Each series' child looked up once: inc() with a label object hashes the labels on every call,
  // and routed() runs for every request. Regions are few and come from the region list.
  const redirected = new Map<string, Counter.Internal>();
  const proxied = new Map<string, Counter.Internal>();
  return {
    metrics,
    routed(region, mode) {
      const children = mode === 'redirect' ? redirected : proxied;
      let child = children.get(region);
      if (!child) children.set(region, (child = routedTotal.labels({ target_region: region, mode })));
      child.inc();
    },
    retried: (region) => retries.inc({ target_region: region }),
    slowClientCut: (reason) => slowClientsCut.inc({ reason }),
  };
}

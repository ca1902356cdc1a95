import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RegionHealth } from './regions/health-monitor.js';

/**
 * The router's Prometheus metrics, on a registry of its own (no global default registry: two
 * routers in one test process keep apart). Names follow CONTRIBUTING.md, 'Naming': labelled by
 * route name, method, status and region, never by path, repository or digest.
 */
export interface RouterMetrics {
  registry: Registry;
  /** Counts one answered request and its duration. `route` is a route name of libs/oci, or the router's own endpoint. */
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  /** Counts one request sent to a region: redirected (blob GETs) or proxied. */
  routed(region: string, mode: 'redirect' | 'proxy'): void;
  /** Counts one proxied request retried on the next region after `region` failed before answering. */
  retried(region: string): void;
}

export function createRouterMetrics(health: () => ReadonlyMap<string, RegionHealth>): RouterMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'router' });
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: 'meridian_http_requests_total',
    help: 'HTTP requests answered, by route name, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'meridian_http_request_duration_seconds',
    help: 'Time from a request until its answer ended, by route name and method (a redirect or the whole proxied answer)',
    labelNames: ['route', 'method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  const routedTotal = new Counter({
    name: 'meridian_router_routed_total',
    help: 'Requests sent to a region, by region and mode (redirect for blob GETs, proxy for the rest)',
    labelNames: ['target_region', 'mode'] as const,
    registers: [registry],
  });
  const retries = new Counter({
    name: 'meridian_router_retries_total',
    help: 'Proxied requests retried on the next region after the region named failed before answering',
    labelNames: ['target_region'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'meridian_region_healthy',
    help: '1 while the router counts the region healthy (its /readyz probes pass), else 0',
    labelNames: ['target_region'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, state] of health()) this.set({ target_region: name }, state.healthy ? 1 : 0);
    },
  });

  return {
    registry,
    observeRequest(route, method, status, seconds) {
      requests.inc({ route, method, status: String(status) });
      durations.observe({ route, method }, seconds);
    },
    routed: (region, mode) => routedTotal.inc({ target_region: region, mode }),
    retried: (region) => retries.inc({ target_region: region }),
  };
}

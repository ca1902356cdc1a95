import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { GATEWAY_METRICS, parseExposition, readGatewayMetrics } from './gateway-metrics.js';

/** What a gateway's /metrics serves: prom-client's text exposition, as the gateway makes it. */
async function exposition(fill: (registry: Registry) => void): Promise<string> {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'gateway', region: 'eu-west' });
  fill(registry);
  return registry.metrics();
}

describe('readGatewayMetrics', () => {
  it('sums client requests and 5xx over label sets (probes left out), merges the pull histograms, and reads cache and storage', async () => {
    const text = await exposition((registry) => {
      const requests = new Counter({ name: GATEWAY_METRICS.requests, help: 'h', labelNames: ['route', 'method', 'status'], registers: [registry] });
      requests.inc({ route: 'manifest', method: 'GET', status: '200' }, 40);
      requests.inc({ route: 'blob', method: 'GET', status: '200' }, 50);
      requests.inc({ route: 'blob', method: 'HEAD', status: '404' }, 7);
      requests.inc({ route: 'blob-upload', method: 'POST', status: '500' }, 2);
      requests.inc({ route: 'manifest', method: 'GET', status: '503' }, 1);
      // Probes and scrapes are not client requests, and a failing /readyz is no client's error.
      requests.inc({ route: 'readyz', method: 'GET', status: '503' }, 30);
      requests.inc({ route: 'metrics', method: 'GET', status: '200' }, 30);
      const duration = new Histogram({ name: GATEWAY_METRICS.duration, help: 'h', labelNames: ['route', 'method'], buckets: [0.1, 1], registers: [registry] });
      duration.observe({ route: 'manifest', method: 'GET' }, 0.05);
      duration.observe({ route: 'blob', method: 'GET' }, 0.5);
      duration.observe({ route: 'blob', method: 'GET' }, 3);
      // Not pulls: a push, and a HEAD.
      duration.observe({ route: 'blob-upload', method: 'PUT' }, 0.05);
      duration.observe({ route: 'blob', method: 'HEAD' }, 0.05);
      new Counter({ name: GATEWAY_METRICS.cacheHits, help: 'h', registers: [registry] }).inc(9);
      new Counter({ name: GATEWAY_METRICS.cacheMisses, help: 'h', registers: [registry] }).inc(3);
      new Gauge({ name: GATEWAY_METRICS.storageUsed, help: 'h', registers: [registry] }).set(123456789);
    });
    expect(readGatewayMetrics(text)).toEqual({
      requests: 100,
      serverErrors: 3,
      pullDurations: { bounds: [0.1, 1, Infinity], counts: [1, 2, 3] },
      cacheHits: 9,
      cacheMisses: 3,
      storageUsedBytes: 123456789,
    });
  });

  it('leaves out what the gateway does not expose (a labelled metric with no samples yet counts as exposed)', async () => {
    const text = await exposition((registry) => {
      new Counter({ name: GATEWAY_METRICS.requests, help: 'h', labelNames: ['route', 'method', 'status'], registers: [registry] });
      new Gauge({ name: 'nodejs_heap_size_used_bytes', help: 'h', registers: [registry] }).set(1);
    });
    expect(readGatewayMetrics(text)).toEqual({ requests: 0, serverErrors: 0 });
  });

  it('refuses what is not the text format (a proxy error page), naming the line', () => {
    expect(() => readGatewayMetrics('<html>\n<body>Bad gateway</body>\n</html>\n')).toThrow('line 1 is not a sample: <html>');
  });
});

describe('parseExposition', () => {
  // Prometheus exposition formats, "Text format details": escapes in label values, +Inf, NaN, timestamps.
  it('reads label values with escapes, special values and timestamps', () => {
    const text = [
      '# HELP x_total a counter',
      '# TYPE x_total counter',
      'x_total{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb"} 3 1700000000000',
      'y_bucket{le="+Inf"} 2',
      'z NaN',
      'w 1.5e3',
    ].join('\n');
    expect(parseExposition(text)).toEqual({
      declared: new Set(['x_total']),
      samples: [
        { name: 'x_total', labels: { path: 'C:\\dir', quote: 'say "hi"', nl: 'a\nb' }, value: 3 },
        { name: 'y_bucket', labels: { le: '+Inf' }, value: 2 },
        { name: 'w', labels: {}, value: 1500 },
      ],
    });
  });
});

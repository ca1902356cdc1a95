import { describe, expect, it } from 'vitest';
import { histogramQuantile, regionFigures, type RegionSample } from './figures.js';
import type { GatewayReading } from './gateway-metrics.js';

const MINUTE = 60_000;
const NOW = 10 * MINUTE;
const window = { now: NOW, stepMs: MINUTE, points: 5 };

/** A sample `minutesAgo` before NOW, from a ready gateway. */
function sample(minutesAgo: number, gateway: GatewayReading | undefined, extra: Partial<RegionSample> = {}): RegionSample {
  return { at: NOW - minutesAgo * MINUTE, probe: 'ready', gateway, ...extra };
}

describe('histogramQuantile', () => {
  // Prometheus' histogram_quantile: linear within the bucket the rank falls in.
  it('interpolates within the bucket, from 0 below the first bound', () => {
    const histogram = { bounds: [0.1, 0.5, 1, Infinity], counts: [50, 90, 100, 100] };
    expect(histogramQuantile(0.5, histogram)).toBeCloseTo(0.1);
    expect(histogramQuantile(0.25, histogram)).toBeCloseTo(0.05);
    expect(histogramQuantile(0.99, histogram)).toBeCloseTo(0.95);
  });

  it('answers the highest finite bound for a rank in the +Inf bucket, and null with no observations', () => {
    expect(histogramQuantile(0.99, { bounds: [0.1, 1, Infinity], counts: [10, 10, 20] })).toBe(1);
    expect(histogramQuantile(0.99, { bounds: [0.1, Infinity], counts: [0, 0] })).toBeNull();
  });
});

describe('regionFigures', () => {
  it('gives rates and ratios per step from counter increases, the last step being the current value', () => {
    const figures = regionFigures(
      [
        sample(2.5, { requests: 100, serverErrors: 0, cacheHits: 10, cacheMisses: 10 }),
        sample(1.5, { requests: 160, serverErrors: 6, cacheHits: 40, cacheMisses: 10 }),
        sample(0.5, { requests: 160, serverErrors: 6, cacheHits: 40, cacheMisses: 10 }),
      ],
      window,
    );
    // 60 requests in the 60 s between the first two samples, none after.
    expect(figures.requestsPerSecond.series).toEqual([null, null, null, 1, 0]);
    expect(figures.requestsPerSecond.current).toBe(0);
    expect(figures.errorRatio.series).toEqual([null, null, null, 0.1, null]);
    expect(figures.cacheHitRatio.series).toEqual([null, null, null, 1, null]);
    expect(figures.requestsPerSecond.available).toBe(true);
  });

  it('counts a counter that went down as reset (the gateway restarted): what it shows came since', () => {
    const figures = regionFigures([sample(1.5, { requests: 500 }), sample(0.5, { requests: 30 })], window);
    expect(figures.requestsPerSecond.current).toBeCloseTo(0.5);
  });

  it('takes the pull p99 from the histogram buckets added between scrapes', () => {
    const figures = regionFigures(
      [
        sample(1.5, { pullDurations: { bounds: [0.1, 1, Infinity], counts: [1000, 1000, 1000] } }),
        sample(0.5, { pullDurations: { bounds: [0.1, 1, Infinity], counts: [1000, 1100, 1100] } }),
      ],
      window,
    );
    // All 100 new pulls took between 0.1 and 1 s.
    expect(figures.pullP99Seconds.current).toBeCloseTo(0.991);
  });

  it('leaves a gap where the gateway could not be scraped, and marks unavailable what the last scrape lacked', () => {
    const figures = regionFigures(
      [sample(3.5, { requests: 0 }), sample(2.5, undefined, { probe: 'unreachable' }), sample(1.5, { requests: 60 }), sample(0.5, { requests: 120 })],
      window,
    );
    expect(figures.requestsPerSecond.series).toEqual([null, null, null, null, 1]);
    expect(figures.storageUsedBytes).toEqual({ current: null, series: [null, null, null, null, null], available: false });
    expect(figures.pullP99Seconds.available).toBe(false);
  });

  it('has no current gateway figure while the gateway does not answer, its history kept', () => {
    const figures = regionFigures([sample(1.6, { requests: 0 }), sample(0.6, { requests: 60 }), sample(0.1, undefined, { probe: 'unreachable', backlog: 2 })], window);
    expect(figures.requestsPerSecond).toEqual({ current: null, series: [null, null, null, null, 1], available: true });
    expect(figures.replicationBacklog.current).toBe(2);
  });

  it('keeps the last value of a gauge in each step; the replication figures are always available', () => {
    const figures = regionFigures(
      [
        sample(1.8, { storageUsedBytes: 1000 }, { backlog: 7, lagP99Seconds: 2 }),
        sample(1.2, { storageUsedBytes: 2000 }, { backlog: 3, lagP99Seconds: null }),
        sample(0.2, undefined, { backlog: 0 }),
      ],
      window,
    );
    expect(figures.storageUsedBytes.series).toEqual([null, null, null, 2000, null]);
    expect(figures.replicationBacklog.series).toEqual([null, null, null, 3, 0]);
    expect(figures.replicationLagP99Seconds.series).toEqual([null, null, null, 2, null]);
    expect(figures.replicationBacklog.available).toBe(true);
  });
});

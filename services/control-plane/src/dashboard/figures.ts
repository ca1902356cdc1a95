import type { GatewayReading, HistogramReading } from './gateway-metrics.js';
import type { Figure, FigureName } from './snapshot-types.js';

/** What the collector learnt of one region at one tick. */
export interface RegionSample {
  /** When (ms since the epoch). */
  at: number;
  /** What the gateway's `/readyz` said: 200, another status, or nothing at all. */
  probe: 'ready' | 'unready' | 'unreachable';
  /** Why the probe failed, in a few words. */
  probeError?: string;
  /** The gateway's metrics; undefined when `/metrics` could not be read. */
  gateway?: GatewayReading;
  /** Why `/metrics` could not be read (a gateway without metrics answers 404). */
  metricsError?: string;
  /** Replications to the region still pending (from the control plane's database). */
  backlog?: number;
  /** 99th percentile of the replication lag into the region over the last minutes; null when nothing was applied. */
  lagP99Seconds?: number | null;
}

/**
 * The span of a sparkline: `points` steps of `stepMs` each, the last one ending at `now`. The
 * last step's value is also the figure's current value, so a rate "now" is a rate over one step.
 */
export interface FigureWindow {
  now: number;
  stepMs: number;
  points: number;
}

/** Every figure of a region card, from its samples (oldest first). */
export function regionFigures(samples: readonly RegionSample[], window: FigureWindow): Record<FigureName, Figure> {
  let latestScrape: GatewayReading | undefined;
  for (const sample of samples) latestScrape = sample.gateway ?? latestScrape;
  // A gateway that did not answer the last scrape has no current figures, only its history.
  const scrapedNow = samples[samples.length - 1]?.gateway !== undefined;
  const gatewayFigure = (field: keyof GatewayReading, series: Array<number | null>): Figure => ({
    current: scrapedNow ? (series[series.length - 1] ?? null) : null,
    series,
    available: latestScrape?.[field] !== undefined,
  });
  const databaseFigure = (series: Array<number | null>): Figure => ({ current: series[series.length - 1] ?? null, series, available: true });
  return {
    requestsPerSecond: gatewayFigure('requests', counterRatio(samples, window, (g) => g.requests, null)),
    errorRatio: gatewayFigure('serverErrors', counterRatio(samples, window, (g) => g.serverErrors, (g) => g.requests)),
    pullP99Seconds: gatewayFigure('pullDurations', pullQuantile(samples, window, 0.99)),
    cacheHitRatio: gatewayFigure(
      'cacheHits',
      counterRatio(samples, window, (g) => g.cacheHits, (g) => (g.cacheHits === undefined || g.cacheMisses === undefined ? undefined : g.cacheHits + g.cacheMisses)),
    ),
    storageUsedBytes: gatewayFigure('storageUsedBytes', gauge(samples, window, (sample) => sample.gateway?.storageUsedBytes)),
    replicationBacklog: databaseFigure(gauge(samples, window, (sample) => sample.backlog)),
    replicationLagP99Seconds: databaseFigure(gauge(samples, window, (sample) => sample.lagP99Seconds ?? undefined)),
  };
}

/** The step a sample taken at `at` belongs to (0 the oldest), or -1 outside the window. */
function stepOf(at: number, window: FigureWindow): number {
  const back = Math.floor((window.now - at) / window.stepMs);
  return back < 0 || back >= window.points ? -1 : window.points - 1 - back;
}

/**
 * Folds each pair of consecutive samples into the step the later one belongs to: a counter's
 * increase between two scrapes happened in the step that ends with the second.
 */
function perStep<A>(
  samples: readonly RegionSample[],
  window: FigureWindow,
  start: () => A,
  add: (acc: A, previous: GatewayReading, next: GatewayReading, seconds: number) => void,
  finish: (acc: A) => number | null,
): Array<number | null> {
  const steps: Array<A | undefined> = new Array(window.points).fill(undefined);
  for (let i = 1; i < samples.length; i++) {
    const previous = samples[i - 1]!;
    const next = samples[i]!;
    const step = stepOf(next.at, window);
    if (step < 0 || !previous.gateway || !next.gateway) continue;
    add((steps[step] ??= start()), previous.gateway, next.gateway, (next.at - previous.at) / 1000);
  }
  return steps.map((acc) => (acc === undefined ? null : finish(acc)));
}

/**
 * A counter's increase between two readings. A counter that went down was reset (the gateway
 * restarted): all it counts now came since, as Prometheus' `increase` assumes.
 */
function increase(previous: number, next: number): number {
  return next >= previous ? next - previous : next;
}

/**
 * Per step: the increase of `numerator` over the increase of `denominator`, or per second when
 * `denominator` is null. Null for a step with no data, or nothing to divide by.
 */
function counterRatio(
  samples: readonly RegionSample[],
  window: FigureWindow,
  numerator: (reading: GatewayReading) => number | undefined,
  denominator: ((reading: GatewayReading) => number | undefined) | null,
): Array<number | null> {
  return perStep(
    samples,
    window,
    () => ({ over: 0, under: 0 }),
    (acc, previous, next, seconds) => {
      const [a, b] = [numerator(previous), numerator(next)];
      const [c, d] = denominator ? [denominator(previous), denominator(next)] : [0, seconds];
      if (a === undefined || b === undefined || c === undefined || d === undefined) return;
      acc.over += increase(a, b);
      acc.under += denominator ? increase(c, d) : seconds;
    },
    (acc) => (acc.under > 0 ? acc.over / acc.under : null),
  );
}

function pullQuantile(samples: readonly RegionSample[], window: FigureWindow, q: number): Array<number | null> {
  return perStep(
    samples,
    window,
    (): { sum?: HistogramReading } => ({}),
    (acc, previous, next) => {
      const [a, b] = [previous.pullDurations, next.pullDurations];
      if (!a || !b || !sameBounds(a, b)) return;
      const reset = b.counts.some((count, i) => count < a.counts[i]!);
      const added = b.counts.map((count, i) => (reset ? count : count - a.counts[i]!));
      // New bounds (a gateway of another version) start the step's sum over.
      if (!acc.sum || !sameBounds(acc.sum, b)) acc.sum = { bounds: b.bounds, counts: added };
      else acc.sum.counts = acc.sum.counts.map((count, i) => count + added[i]!);
    },
    (acc) => (acc.sum ? histogramQuantile(q, acc.sum) : null),
  );
}

/** Per step: the last value the sample gave in it. */
function gauge(samples: readonly RegionSample[], window: FigureWindow, value: (sample: RegionSample) => number | undefined): Array<number | null> {
  const steps: Array<number | null> = new Array(window.points).fill(null);
  for (const sample of samples) {
    const step = stepOf(sample.at, window);
    const v = value(sample);
    if (step >= 0 && v !== undefined) steps[step] = v;
  }
  return steps;
}

function sameBounds(a: HistogramReading, b: HistogramReading): boolean {
  return a.bounds.length === b.bounds.length && a.bounds.every((bound, i) => bound === b.bounds[i]);
}

/**
 * The q-quantile of the observations a cumulative histogram counts, interpolated linearly within
 * the bucket it falls in, as Prometheus' `histogram_quantile` does: in the +Inf bucket it is the
 * highest finite bound. Null with no observations.
 */
export function histogramQuantile(q: number, histogram: HistogramReading): number | null {
  const { bounds, counts } = histogram;
  const total = counts[counts.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  const i = counts.findIndex((count) => count >= rank);
  const upper = bounds[i]!;
  if (upper === Infinity) return i > 0 ? bounds[i - 1]! : null;
  const lower = i > 0 ? bounds[i - 1]! : 0;
  const below = i > 0 ? counts[i - 1]! : 0;
  const within = counts[i]! - below;
  return within > 0 ? lower + ((upper - lower) * (rank - below)) / within : upper;
}

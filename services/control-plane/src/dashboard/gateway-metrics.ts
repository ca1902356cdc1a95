import type { RouteName } from '@meridian/oci';

/**
 * The metrics the dashboard reads from a region gateway's `/metrics`. Counters are cumulative since the gateway started; the collector
 * keeps readings over time and the figures come from their differences.
 */
export const GATEWAY_METRICS = {
  requests: 'meridian_http_requests_total',
  duration: 'meridian_http_request_duration_seconds',
  cacheHits: 'meridian_blob_cache_hits_total',
  cacheMisses: 'meridian_blob_cache_misses_total',
  storageUsed: 'meridian_storage_used_bytes',
} as const;

/** A pull is a GET of content: a manifest or a blob (the route table in libs/oci). */
const PULL_ROUTES: ReadonlySet<string> = new Set<RouteName>(['manifest', 'blob']);
/**
 * Routes that serve probes and scrapes, not clients: left out of requests and errors, or the
 * dashboard's own probes would be most of a quiet region's traffic, and a region failing /readyz
 * would count its probes as its clients' errors.
 */
const PROBE_ROUTES: ReadonlySet<string> = new Set(['healthz', 'readyz', 'metrics']);

/** A histogram's cumulative bucket counts: `counts[i]` observations at or below `bounds[i]` (the last bound is +Inf). */
export interface HistogramReading {
  bounds: number[];
  counts: number[];
}

/**
 * What one scrape of a gateway said, summed over its label sets. A field is undefined when the
 * gateway does not expose that metric (the dashboard shows "no data" for what depends on it).
 */
export interface GatewayReading {
  /** Requests of clients: every route but the probes' and scrapes' (healthz, readyz, metrics). */
  requests?: number;
  /** Of `requests`, those answered 5xx: the gateway's own failures (4xx are the clients'). */
  serverErrors?: number;
  /** Durations of pulls (GET of a manifest or a blob). */
  pullDurations?: HistogramReading;
  cacheHits?: number;
  cacheMisses?: number;
  storageUsedBytes?: number;
}

/** One sample line of the exposition: `name{label="value",...} value [timestamp]`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Reads a Prometheus text exposition (what prom-client serves) into a GatewayReading. Throws on
 * a line that is not of the format, so a proxy's HTML error page is reported, not read as zeros.
 */
export function readGatewayMetrics(text: string): GatewayReading {
  const { declared, samples } = parseExposition(text);
  const family = (name: string) => samples.filter((sample) => sample.name === name);
  const reading: GatewayReading = {};
  if (declared.has(GATEWAY_METRICS.requests)) {
    const requests = family(GATEWAY_METRICS.requests).filter((sample) => !PROBE_ROUTES.has(sample.labels.route ?? ''));
    reading.requests = sum(requests);
    reading.serverErrors = sum(requests.filter((sample) => /^5\d\d$/.test(sample.labels.status ?? '')));
  }
  if (declared.has(GATEWAY_METRICS.duration)) {
    reading.pullDurations = mergeBuckets(family(`${GATEWAY_METRICS.duration}_bucket`).filter((sample) => isPull(sample.labels)));
  }
  if (declared.has(GATEWAY_METRICS.cacheHits) && declared.has(GATEWAY_METRICS.cacheMisses)) {
    reading.cacheHits = sum(family(GATEWAY_METRICS.cacheHits));
    reading.cacheMisses = sum(family(GATEWAY_METRICS.cacheMisses));
  }
  if (declared.has(GATEWAY_METRICS.storageUsed)) reading.storageUsedBytes = sum(family(GATEWAY_METRICS.storageUsed));
  return reading;
}

function isPull(labels: Record<string, string>): boolean {
  return labels.method === 'GET' && PULL_ROUTES.has(labels.route ?? '');
}

function sum(samples: Sample[]): number {
  return samples.reduce((total, sample) => total + sample.value, 0);
}

/** Adds the histograms of several label sets bucket by bucket (they share their bounds). */
function mergeBuckets(buckets: Sample[]): HistogramReading {
  const byBound = new Map<number, number>();
  for (const bucket of buckets) {
    const bound = toNumber(bucket.labels.le ?? '');
    byBound.set(bound, (byBound.get(bound) ?? 0) + bucket.value);
  }
  const bounds = [...byBound.keys()].sort((a, b) => a - b);
  return { bounds, counts: bounds.map((bound) => byBound.get(bound)!) };
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$/;
const LABEL_PAIR = /[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,|$)/y;
const TYPE_LINE = /^#[ \t]+TYPE[ \t]+(\S+)[ \t]+\S+/;

/**
 * The Prometheus text exposition format, version 0.0.4: the families declared by `# TYPE` lines
 * (a labelled family with no samples yet is declared all the same) and every sample line. The one
 * parser of this format on npm merges the buckets of all label sets of a histogram into one,
 * which would mix pulls with pushes here; the format is a line grammar, read here whole.
 */
export function parseExposition(text: string): { declared: Set<string>; samples: Sample[] } {
  const declared = new Set<string>();
  const samples: Sample[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      const type = TYPE_LINE.exec(line);
      if (type) declared.add(type[1]!);
      return;
    }
    const match = SAMPLE_LINE.exec(line);
    const labels = match ? parseLabels(match[2] ?? '') : undefined;
    const value = match ? toNumber(match[3]!) : NaN;
    if (!match || !labels || (Number.isNaN(value) && match[3] !== 'NaN')) throw new Error(`line ${index + 1} is not a sample: ${line.slice(0, 80)}`);
    // A NaN (a gauge with nothing to say) would turn every sum it joins into NaN.
    if (!Number.isNaN(value)) samples.push({ name: match[1]!, labels, value });
  });
  return { declared, samples };
}

/** `a="x",b="y\"z"` as an object, unescaping values; undefined if it is not such a list. */
function parseLabels(text: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  LABEL_PAIR.lastIndex = 0;
  while (LABEL_PAIR.lastIndex < text.length) {
    const start = LABEL_PAIR.lastIndex;
    const pair = LABEL_PAIR.exec(text);
    if (!pair) return text.slice(start).trim() === '' ? labels : undefined;
    labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_, escaped: string) => (escaped === 'n' ? '\n' : escaped));
  }
  return labels;
}

/** A sample value or a bucket bound: a float, `+Inf`, `-Inf` or `NaN`. */
function toNumber(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return text === '' ? NaN : Number(text);
}

import http from 'node:http';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** One metric family as parse-prometheus-text-format reads it; histograms carry count and sum. */
interface MetricFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: Array<{ value?: string; labels?: Record<string, string> }>;
}

/**
 * A service's `/metrics`, fetched and parsed by a Prometheus text-format parser (not by our own
 * code), so a malformed exposition fails the test that reads it.
 */
export class MetricsScrape {
  private constructor(
    readonly families: Map<string, MetricFamily>,
    /** Names of the histograms, whose series are the families `<name>_bucket`, `<name>_sum`, `<name>_count`. */
    readonly histograms: ReadonlySet<string>,
  ) {}

  /**
   * GETs `${baseUrl}/metrics` on a connection of its own, as a Prometheus server would (so that
   * with several gateway processes on one port, successive scrapes reach different ones); throws
   * unless it answers 200 in the Prometheus text format.
   */
  static async of(baseUrl: string): Promise<MetricsScrape> {
    const { status, type, text } = await new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
      http
        .get(`${baseUrl}/metrics`, { agent: false }, (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, type: response.headers['content-type'] ?? '', text: body }));
          response.on('error', reject);
        })
        .on('error', reject);
    });
    if (status !== 200) throw new Error(`${baseUrl}/metrics answered ${status}: ${text.slice(0, 300)}`);
    if (!type.startsWith('text/plain')) throw new Error(`${baseUrl}/metrics is ${type}, not the Prometheus text format`);
    // The parser folds every label set of a histogram into one; read untyped, a histogram's
    // `_bucket`, `_sum` and `_count` series come out as families of their own, labels kept.
    const histograms = new Set<string>();
    const families = parsePrometheusTextFormat(
      text.replace(/^# TYPE (\S+) histogram$/gm, (_line, name: string) => (histograms.add(name), `# TYPE ${name} untyped`)),
    ) as MetricFamily[];
    // A histogram's label sets come one after another, each as bucket, sum and count lines: the
    // same `_bucket` (`_sum`, `_count`) family comes back once per label set.
    const byName = new Map<string, MetricFamily>();
    for (const family of families) {
      const seen = byName.get(family.name);
      if (seen) seen.metrics.push(...family.metrics);
      else byName.set(family.name, family);
    }
    return new MetricsScrape(byName, histograms);
  }

  /**
   * The sum over the samples of `name` whose labels include `labels` (of a histogram: of its
   * observation counts; `${name}_sum` for their sum); 0 when there are none.
   */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples(name, labels).reduce((sum, sample) => sum + Number(sample.value ?? 0), 0);
  }

  /** The samples of `name` (a histogram's: of `${name}_count`) whose labels include `labels`. */
  samples(name: string, labels: Record<string, string> = {}): MetricFamily['metrics'] {
    const family = this.families.get(this.histograms.has(name) ? `${name}_count` : name);
    if (!family) return [];
    return family.metrics.filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels?.[key] === value));
  }

  /** Every label value of every sample, for checks that no unbounded value became a label. */
  labelValues(): string[] {
    return [...this.families.values()].flatMap((family) => family.metrics.flatMap((sample) => Object.values(sample.labels ?? {})));
  }
}

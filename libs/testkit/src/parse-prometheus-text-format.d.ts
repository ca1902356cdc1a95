// The package ships no types; MetricsScrape (prometheus.ts) gives its result one.
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}

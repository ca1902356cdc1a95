/**
 * The monitoring files in deploy/ against a real cluster: the Prometheus configuration and alert
 * rules parse (YAML), the Grafana dashboard parses (JSON), every PromQL expression in them parses
 * (Prometheus' own PromQL grammar, @prometheus-io/lezer-promql), and every metric they use is
 * served by some process of a running cluster: each URL `pnpm cluster up` lists under "metrics"
 * in cluster.json is scraped. A metric a rule or panel names and no process serves fails the
 * test, naming it: an alert on a metric nobody exports would never fire.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { OciTestClient, buildImage } from '@meridian/testkit';
import { REPO_ROOT, type ClusterState } from '../deploy/cluster/cluster.js';
import { createTestCluster, type TestCluster } from './support/test-cluster.js';

const PROMETHEUS_DIR = path.join(REPO_ROOT, 'deploy/prometheus');
const GRAFANA_DASHBOARD = path.join(REPO_ROOT, 'deploy/grafana/meridian-regions.json');
/** Series Prometheus writes itself for every target, not served by any /metrics. */
const PROMETHEUS_OWN_SERIES = new Set(['up']);

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface GrafanaPanel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
  panels?: GrafanaPanel[];
}

/** The metric names a PromQL expression selects; throws, naming the expression, if it does not parse. */
function metricNames(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`PromQL does not parse at ${cursor.from}: ${expr}`);
    // A vector selector's metric name is an Identifier directly under it.
    if (cursor.name === 'Identifier' && cursor.node.parent?.name === 'VectorSelector') names.push(expr.slice(cursor.from, cursor.to));
  } while (cursor.next());
  return names;
}

/**
 * Grafana's expressions with its variables given values PromQL accepts: `$__rate_interval`
 * stands where a duration goes; `$region` only inside label matchers' strings.
 */
function asPromql(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m');
}

function panelsOf(panels: GrafanaPanel[]): GrafanaPanel[] {
  return panels.flatMap((panel) => [panel, ...panelsOf(panel.panels ?? [])]);
}

/** The series names a /metrics answer declares: each family's samples (a histogram's _bucket, _sum, _count). */
function servedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
  }
  for (const [, name] of exposition.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) names.add(name!);
  return names;
}

const rules = (): AlertRule[] => {
  const file = parseYaml(readFileSync(path.join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> };
  return file.groups.flatMap((group) => group.rules);
};
const dashboard = () =>
  JSON.parse(readFileSync(GRAFANA_DASHBOARD, 'utf8')) as {
    uid: string;
    panels: GrafanaPanel[];
    templating: { list: Array<{ name: string; type: string; definition?: string }> };
  };

/** Every PromQL expression of the rules and the dashboard, with where it comes from. */
function expressions(): Array<{ where: string; expr: string }> {
  const grafana = dashboard();
  return [
    ...rules().map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })),
    ...panelsOf(grafana.panels).flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `panel "${panel.title}"`, expr: asPromql(target.expr) }))),
    // label_values(<selector>, <label>) is Grafana's; the selector inside is PromQL.
    ...grafana.templating.list
      .filter((variable) => variable.type === 'query')
      .map((variable) => ({ where: `variable $${variable.name}`, expr: /^label_values\((.*),\s*\w+\)$/.exec(variable.definition ?? '')![1]! })),
  ];
}

describe('deploy/prometheus and deploy/grafana, read as files', () => {
  it('the Prometheus configuration scrapes by file discovery and loads the alert rules beside it', () => {
    const config = parseYaml(readFileSync(path.join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; metrics_path: string; file_sd_configs: Array<{ files: string[] }> }>;
    };
    for (const file of config.rule_files) expect(existsSync(path.join(PROMETHEUS_DIR, file)), file).toBe(true);
    expect(config.scrape_configs.map((job) => [job.job_name, job.metrics_path])).toEqual([['meridian', '/metrics']]);
    expect(config.scrape_configs[0]!.file_sd_configs[0]!.files).toEqual(['targets/*.json']);
  });

  it('has the alerts for a region down, replication lag, failed replication jobs and the error rate, each with a severity, a wait and a summary', () => {
    const all = rules();
    expect(all.map((rule) => rule.alert).sort()).toEqual(['MeridianErrorRateHigh', 'MeridianRegionDown', 'MeridianReplicationJobsFailed', 'MeridianReplicationLagHigh']);
    for (const rule of all) {
      expect(rule.labels?.severity, rule.alert).toMatch(/^(critical|warning)$/);
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
    }
  });

  it('every expression of the rules and the Grafana dashboard is PromQL that parses', () => {
    const all = expressions();
    expect(all.length).toBeGreaterThan(10);
    for (const { where, expr } of all) expect(() => metricNames(expr), where).not.toThrow();
    expect([...new Set(all.flatMap(({ expr }) => metricNames(expr)))].sort()).toEqual([
      'meridian_blob_bytes_received_total',
      'meridian_blob_bytes_served_total',
      'meridian_blob_cache_evictions_total',
      'meridian_blob_cache_hits_total',
      'meridian_blob_cache_misses_total',
      'meridian_http_request_duration_seconds_bucket',
      'meridian_http_requests_total',
      'meridian_replication_backlog',
      'meridian_replication_jobs',
      'meridian_replication_lag_seconds_bucket',
      'meridian_storage_used_bytes',
      'up',
    ]);
    expect(dashboard().uid).toBe('meridian-regions');
  });

  it('shows each region\'s blob cache hit ratio: pulls served from its own store over those plus the read-through fills', () => {
    const panel = panelsOf(dashboard().panels).find((candidate) => candidate.title === 'Blob cache hit ratio');
    expect(panel, 'a panel titled "Blob cache hit ratio"').toBeDefined();
    const [ratio] = panel!.targets!.map((target) => target.expr);
    const rate = (metric: string) => `sum(rate(${metric}{service="gateway", region=~"$region"}[$__rate_interval]))`;
    expect(ratio).toBe(`${rate('meridian_blob_cache_hits_total')} / (${rate('meridian_blob_cache_hits_total')} + ${rate('meridian_blob_cache_misses_total')})`);
  });
});

describe('every metric the monitoring files use is served by a process of a real cluster', () => {
  let testCluster: TestCluster;
  let state: ClusterState;

  beforeAll(async () => {
    testCluster = await createTestCluster('monitoring');
    state = await testCluster.cluster.up(2);
    // A push replicated and a pull: the labelled series have samples too.
    const image = await new OciTestClient(state.regions[0]!.http).pushImage('monitoring/app', 'v1', buildImage());
    const target = new OciTestClient(state.regions[1]!.http);
    const deadline = Date.now() + 60_000;
    while ((await target.fetch(target.url('manifest', { name: 'monitoring/app', reference: image.digest }), { method: 'GET' })).status !== 200) {
      if (Date.now() > deadline) throw new Error('monitoring/app did not replicate within 60 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 240_000);

  afterAll(() => testCluster?.dispose(), 120_000);

  it('cluster.json lists a /metrics URL for every process, and each answers', async () => {
    expect(state.metrics).toContain(`${state.controlPlane}/metrics`);
    for (const region of state.regions) expect(state.metrics).toContain(`${region.http}/metrics`);
    expect(state.metrics).toContain(`${state.worker}/metrics`);
    for (const url of state.metrics) {
      const response = await fetch(url);
      expect(response.status, url).toBe(200);
      expect(response.headers.get('content-type'), url).toMatch(/^text\/plain/);
      await response.body?.cancel();
    }
  });

  it('each metric named by an alert rule or a dashboard panel is on some /metrics', async () => {
    const served = new Set<string>(PROMETHEUS_OWN_SERIES);
    for (const url of state.metrics) for (const name of servedNames(await (await fetch(url)).text())) served.add(name);
    const missing = expressions().flatMap(({ where, expr }) => metricNames(expr).filter((name) => !served.has(name)).map((name) => `${name} (${where})`));
    expect(missing, `metrics no process of the cluster serves: ${missing.join(', ')}`).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { buildImage, MetricsScrape, until } from '@meridian/testkit';
import { replicationTests, startRegions } from './testing/replication-test.js';

/**
 * The worker's HTTP side (README, "Observability"): /metrics as Prometheus text a parser accepts,
 * the replication lag measured from the change's commit at its origin (backfills left out), and
 * /healthz and /readyz (Redis and the control plane answering).
 */
const REPO = 'metrics/app';
const start = replicationTests();

/** A scrape taken once the worker counts the job finished (the report reaches the control plane just before). */
async function finishedScrape(url: string): Promise<MetricsScrape> {
  let scrape!: MetricsScrape;
  await until(async () => (scrape = await MetricsScrape.of(url)).value('meridian_replication_jobs_finished_total', { target_region: 'us', outcome: 'done' }) > 0, {
    what: 'the job counted finished',
    intervalMs: 20,
  });
  return scrape;
}

describe('replication worker /metrics and health', () => {
  it('records the lag of an applied change from its commit at the origin, by target region', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const url = t.worker.url!;
    const image = buildImage();
    await target!.addImage(REPO, image, { tag: 'v1', clock: { hlc: 1n, origin: 'eu' } });

    const before = await MetricsScrape.of(url);
    expect(before.value('meridian_replication_lag_seconds', { target_region: 'us' })).toBe(0);
    // Committed at the origin ten seconds ago (its relay or the queue was slow, say).
    const change = { ...t.change('eu', { kind: 'tag.delete', repository: REPO, tag: 'v1' }), at: new Date(Date.now() - 10_000).toISOString() };
    expect(await t.replicate(change, 'us')).toMatchObject({ outcome: 'done' });

    const after = await finishedScrape(url);
    expect(after.value('meridian_replication_lag_seconds', { target_region: 'us' })).toBe(1);
    expect(after.value('meridian_replication_lag_seconds_sum', { target_region: 'us' })).toBeGreaterThanOrEqual(10);
    expect(after.samples('meridian_replication_lag_seconds', { target_region: 'us' })[0]!.labels).toMatchObject({ service: 'replication-worker' });
    expect(after.value('meridian_http_requests_total', { route: 'metrics', method: 'GET', status: '200' })).toBeGreaterThan(0);
  });

  it('leaves a backfill job out of the lag: old content brought to a new region is not lag', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const url = t.worker.url!;
    await target!.addImage(REPO, buildImage(), { tag: 'v1', clock: { hlc: 1n, origin: 'eu' } });
    // Committed at the origin a day before the new region's backfill copies it.
    const change = { ...t.change('eu', { kind: 'tag.delete', repository: REPO, tag: 'v1' }), at: new Date(Date.now() - 86_400_000).toISOString() };
    expect(await t.replicate(change, 'us', {}, { backfill: true })).toMatchObject({ outcome: 'done' });

    const after = await finishedScrape(url);
    expect(after.value('meridian_replication_lag_seconds', { target_region: 'us' })).toBe(0);
  });

  it('answers /readyz with 503 naming the control plane while the control plane is not ready', async () => {
    const [origin] = await startRegions('eu');
    const t = await start([{ fake: origin! }]);
    t.controlPlane.ready = false;
    const readyz = await fetch(`${t.worker.url}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toMatchObject({ status: 'unavailable', failing: { 'control-plane': expect.stringContaining('503') } });
  });

  it('answers /healthz, and /readyz while Redis and the control plane answer', async () => {
    const [origin] = await startRegions('eu');
    const t = await start([{ fake: origin! }]);
    const healthz = await fetch(`${t.worker.url}/healthz`);
    expect(healthz.status).toBe(200);
    expect(await healthz.json()).toEqual({ status: 'ok' });
    const readyz = await fetch(`${t.worker.url}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toEqual({ status: 'ready' });
    expect((await fetch(`${t.worker.url}/elsewhere`)).status).toBe(404);
  });
});

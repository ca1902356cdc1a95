import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsScrape } from '@meridian/testkit';
import { startTestControlPlane, testChange, testDigest, testRegion, type TestControlPlane } from './testing/test-control-plane.js';

/**
 * The control plane's /metrics (README, "Observability"): Prometheus text a parser accepts, the
 * replications pending per target region and the replication jobs per state moving as a region's
 * relay delivers a change, and requests counted by route pattern, never by path.
 */
let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane();
  for (const [index, name] of ['eu', 'us', 'ap'].entries()) {
    expect((await cp.request('POST', '/api/v1/regions', testRegion(name, index + 1))).status).toBe(201);
  }
});
afterAll(() => cp?.close());

describe('control plane /metrics', () => {
  it('shows a delivered change pending in each target region and queued as a waiting job', async () => {
    const before = await MetricsScrape.of(cp.url);
    expect(before.value('meridian_replication_backlog', { target_region: 'us' })).toBe(0);
    expect(before.samples('meridian_replication_jobs', { state: 'waiting' })).toHaveLength(1);

    await cp.deliver([testChange('eu', 1, 1000, { kind: 'blob.link', repository: 'metrics/app', digest: testDigest(1), size: 10 })]);

    const after = await MetricsScrape.of(cp.url);
    expect(after.value('meridian_replication_backlog', { target_region: 'us' })).toBe(1);
    expect(after.value('meridian_replication_backlog', { target_region: 'ap' })).toBe(1);
    // The origin replicates nothing to itself.
    expect(after.value('meridian_replication_backlog', { target_region: 'eu' })).toBe(0);
    expect(after.value('meridian_replication_jobs', { state: 'waiting' }) - before.value('meridian_replication_jobs', { state: 'waiting' })).toBe(2);
    for (const sample of after.samples('meridian_replication_backlog')) expect(sample.labels?.service).toBe('control-plane');
    expect(after.samples('meridian_db_pool_connections').map((sample) => sample.labels?.state).sort()).toEqual(['idle', 'total', 'waiting']);
    expect(after.value('meridian_http_requests_total', { route: '/api/v1/changes', method: 'POST', status: '200' })).toBe(1);
    expect(after.value('meridian_http_requests_total', { route: '/api/v1/regions', method: 'POST', status: '201' })).toBe(3);
  });
});

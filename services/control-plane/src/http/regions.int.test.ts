import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicateJobId, type ChangeBody, type RegionRecord } from '@meridian/proto';
import { startTestControlPlane, testChange, testRegion, type TestControlPlane, TEST_MANIFEST_TYPE, testDigest } from '../testing/test-control-plane.js';

// /api/v1/regions: what `meridian region add|remove|list` drives, and the relays' heartbeats.

let cp: TestControlPlane;
const MANIFEST = TEST_MANIFEST_TYPE;
const digest = testDigest;
let seq = 0;

beforeAll(async () => {
  cp = await startTestControlPlane();
});
afterAll(() => cp?.close());

/** Delivers changes from `origin`; returns their ids in order. */
function push(origin: string, ...bodies: ChangeBody[]): Promise<string[]> {
  return cp.deliver(bodies.map((body) => testChange(origin, ++seq, 1000 + seq, body)));
}

async function region(name: string): Promise<RegionRecord | undefined> {
  const list = await cp.request<{ regions: RegionRecord[] }>('GET', '/api/v1/regions');
  expect(list.status).toBe(200);
  return list.body.regions.find((entry) => entry.name === name);
}

async function replicationRows(region: string): Promise<{ change_id: string; state: string; backfill: boolean }[]> {
  const { rows } = await cp.controlPlane.pool.query('SELECT change_id, state, backfill FROM replications WHERE region = $1 ORDER BY change_id', [region]);
  return rows;
}

const report = (changeId: string, region: string, body: object) => cp.request('POST', `/api/v1/replication/${changeId}/${region}`, body);

describe('POST /api/v1/regions', () => {
  it('registers a region into an empty catalog as active, with no backfill', async () => {
    const created = await cp.request('POST', '/api/v1/regions', testRegion('eu', 1));
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ ...testRegion('eu', 1), state: 'active', routing: true, heartbeatAt: null, backfill: null });
    expect(await region('eu')).toEqual(created.body);
  });

  it('refuses a name already registered (409) and bad input (400 naming the field)', async () => {
    const again = await cp.request('POST', '/api/v1/regions', testRegion('eu', 2));
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'REGION_EXISTS', message: expect.stringContaining('"eu"') });

    const bad = await cp.request('POST', '/api/v1/regions', { ...testRegion('x', 3), grpc: 'nowhere', lat: 91 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toBe('invalid request body: grpc: host:port; lat: Too big: expected number to be <=90');
  });

  it('backfills a region added to a catalog with content: one row per live manifest, tag and blob link, with progress, then active', async () => {
    const [blob1] = await push('eu', { kind: 'blob.link', repository: 'bf/app', digest: digest(1), size: 100 });
    const [, put1, put2] = await push(
      'eu',
      { kind: 'blob.link', repository: 'bf/app', digest: digest(2), size: 200 },
      { kind: 'manifest.put', repository: 'bf/app', digest: digest(11), mediaType: MANIFEST, size: 11, tag: 'v1' },
      { kind: 'manifest.put', repository: 'bf/app', digest: digest(12), mediaType: MANIFEST, size: 12, tag: 'v2' },
      // Not live any more: an unlinked blob, a deleted manifest (and with it its tag).
      { kind: 'blob.unlink', repository: 'bf/app', digest: digest(2) },
      { kind: 'manifest.put', repository: 'bf/app', digest: digest(13), mediaType: MANIFEST, size: 13, tag: 'v3' },
      { kind: 'manifest.delete', repository: 'bf/app', digest: digest(13) },
    );

    const added = await cp.request<RegionRecord>('POST', '/api/v1/regions', testRegion('us', 2));
    expect(added.status).toBe(201);
    expect(added.body.state).toBe('adding');
    expect(added.body.backfill).toEqual({ done: 0, failed: 0, total: 3, bytes: 0, etaSeconds: null });
    expect(await replicationRows('us')).toEqual([blob1, put1, put2].map((id) => ({ change_id: id, state: 'pending', backfill: true })));
    // Each job says it is a backfill, so the worker leaves it out of the replication lag.
    for (const id of [blob1!, put1!, put2!]) expect((await cp.jobs.getJob(replicateJobId(id, 'us')))?.data).toMatchObject({ changeId: id, region: 'us', backfill: true });

    // A change made during the backfill targets the new region too, outside the backfill.
    const [during] = await push('eu', { kind: 'blob.link', repository: 'bf/app', digest: digest(3), size: 300 });
    expect((await replicationRows('us')).find((row) => row.change_id === during)).toEqual({ change_id: during, state: 'pending', backfill: false });
    expect((await cp.jobs.getJob(replicateJobId(during!, 'us')))?.data).not.toHaveProperty('backfill');

    expect((await report(blob1!, 'us', { outcome: 'done', bytes: 100 })).status).toBe(204);
    const progress = (await region('us'))!;
    expect(progress.state).toBe('adding');
    expect(progress.backfill).toMatchObject({ done: 1, failed: 0, total: 3, bytes: 100 });
    expect(progress.backfill!.etaSeconds).toEqual(expect.any(Number));

    expect((await report(put1!, 'us', { outcome: 'failed', error: 'UNAVAILABLE: eu is down', attempts: 12 })).status).toBe(204);
    expect((await region('us'))!.backfill).toMatchObject({ done: 2, failed: 1, total: 3 });
    expect((await region('us'))!.state).toBe('adding');

    expect((await report(put2!, 'us', { outcome: 'done', bytes: 50 })).status).toBe(204);
    const caughtUp = (await region('us'))!;
    expect(caughtUp.state).toBe('active');
    expect(caughtUp.backfill).toEqual({ done: 3, failed: 1, total: 3, bytes: 150, etaSeconds: 0 });
  });
});

describe('DELETE /api/v1/regions/:name', () => {
  it('drains a region: pending rows dropped and their jobs removed, finished rows kept, no new work for it', async () => {
    expect((await cp.request('POST', '/api/v1/regions', testRegion('ap', 3))).status).toBe(201);
    const [first, second] = await push(
      'eu',
      { kind: 'manifest.put', repository: 'drain/app', digest: digest(21), mediaType: MANIFEST, size: 21, tag: 'v1' },
      { kind: 'manifest.put', repository: 'drain/app', digest: digest(22), mediaType: MANIFEST, size: 22, tag: 'v2' },
    );
    expect((await report(first!, 'ap', { outcome: 'done' })).status).toBe(204);
    expect(await cp.jobs.getJob(replicateJobId(second!, 'ap'))).toBeDefined();

    const removed = await cp.request<RegionRecord>('DELETE', '/api/v1/regions/ap');
    expect(removed.status).toBe(202);
    expect(removed.body.state).toBe('draining');
    const rows = await replicationRows('ap');
    expect(rows.find((row) => row.change_id === first)?.state).toBe('done');
    expect(rows.find((row) => row.change_id === second)?.state).toBe('dropped');
    expect(rows.some((row) => row.state === 'pending')).toBe(false);
    expect(await cp.jobs.getJob(replicateJobId(second!, 'ap'))).toBeUndefined();
    // The other target keeps its job.
    expect(await cp.jobs.getJob(replicateJobId(second!, 'us'))).toBeDefined();

    const [later] = await push('eu', { kind: 'tag.delete', repository: 'drain/app', tag: 'v1' });
    expect((await replicationRows('ap')).some((row) => row.change_id === later)).toBe(false);
    // The requeue does not bring dropped work back.
    await cp.controlPlane.requeue.run();
    expect(await cp.jobs.getJob(replicateJobId(second!, 'ap'))).toBeUndefined();

    expect((await cp.request('DELETE', '/api/v1/regions/ap')).status).toBe(202);
  });

  it('registers a draining region again, with a new backfill', async () => {
    const added = await cp.request<RegionRecord>('POST', '/api/v1/regions', testRegion('ap', 4));
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ ...testRegion('ap', 4), state: 'adding' });
    expect(added.body.backfill!.done).toBe(0);
    expect(added.body.backfill!.total).toBeGreaterThan(0);
  });

  it('answers 404 for an unknown region, and 400 for force without purge, changing nothing', async () => {
    const unknown = await cp.request('DELETE', '/api/v1/regions/nowhere');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('REGION_UNKNOWN');
    expect((await cp.request('DELETE', '/api/v1/regions/nowhere?purge=true')).body.error.code).toBe('REGION_UNKNOWN');

    const force = await cp.request('DELETE', '/api/v1/regions/us?force=true');
    expect(force.status).toBe(400);
    expect(force.body.error.message).toBe('query.force: only goes with purge=true');
    expect((await region('us'))!.state).toBe('active');
  });
});

describe('PUT /api/v1/regions/:name/routing', () => {
  it('turns routing to a region off and on again, leaving its state alone; 404 for an unknown region, 400 for a bad body', async () => {
    const off = await cp.request<RegionRecord>('PUT', '/api/v1/regions/eu/routing', { enabled: false });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ name: 'eu', state: 'active', routing: false });
    expect((await region('eu'))!.routing).toBe(false);

    const on = await cp.request<RegionRecord>('PUT', '/api/v1/regions/eu/routing', { enabled: true });
    expect(on.body).toMatchObject({ name: 'eu', state: 'active', routing: true });

    const unknown = await cp.request('PUT', '/api/v1/regions/nowhere/routing', { enabled: false });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('REGION_UNKNOWN');
    const bad = await cp.request('PUT', '/api/v1/regions/eu/routing', { enabled: 'no' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^invalid request body: enabled: /);
  });
});

describe('POST /api/v1/regions/:name/heartbeat', () => {
  it('records the heartbeat of a registered region; 404 for another', async () => {
    expect((await region('eu'))!.heartbeatAt).toBeNull();
    const beat = await cp.request('POST', '/api/v1/regions/eu/heartbeat');
    expect(beat.status).toBe(204);
    expect(Date.parse((await region('eu'))!.heartbeatAt!)).not.toBeNaN();
    expect((await cp.request('POST', '/api/v1/regions/nowhere/heartbeat')).status).toBe(404);
  });
});

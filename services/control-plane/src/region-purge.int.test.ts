import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { REPLICATION_QUEUE, type RegionRecord } from '@meridian/proto';
import { freePort, until } from '@meridian/testkit';
import { FakeReplicaRegion } from '@meridian/testkit/fake-replica-region';
import { startTestControlPlane, testChange, testDigest, testRegion, TEST_MANIFEST_TYPE, type TestControlPlane } from './testing/test-control-plane.js';

// `DELETE /api/v1/regions/NAME?purge=true` on a real control plane database, against regions
// serving the replica protocol over real gRPC (libs/testkit's in-memory region): a purge drains
// the region, refuses to lose content no other region holds, has the region delete what it holds
// (replica.proto `Purge`) and then forgets the region; a region it cannot reach stays draining.

const started: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((part) => part.close()));
});

async function controlPlane(): Promise<TestControlPlane> {
  const cp = await startTestControlPlane();
  started.push(cp);
  return cp;
}

async function region(name: string): Promise<FakeReplicaRegion> {
  const fake = await FakeReplicaRegion.start(name);
  started.push(fake);
  return fake;
}

async function register(cp: TestControlPlane, name: string, grpc: string, index: number): Promise<void> {
  expect((await cp.request('POST', '/api/v1/regions', { ...testRegion(name, index), grpc })).status).toBe(201);
}

const regionsOf = async (cp: TestControlPlane) => (await cp.request<{ regions: RegionRecord[] }>('GET', '/api/v1/regions')).body.regions;
const rowsOf = async (cp: TestControlPlane, name: string) => (await cp.controlPlane.pool.query('SELECT 1 FROM replications WHERE region = $1', [name])).rowCount;

describe('purging a region', () => {
  it('refuses while the region holds content no other region holds, naming it; once replicated, purges it and forgets the region', async () => {
    const cp = await controlPlane();
    const [eu, us] = [await region('eu'), await region('us')];
    await register(cp, 'eu', eu.address, 1);
    await register(cp, 'us', us.address, 2);
    const blob = await us.addBlob('team/only', Buffer.from('pushed to us'));
    // us wrote a blob link and a manifest; eu has not got them yet.
    const [link, put] = await cp.deliver([
      testChange('us', 1, 1001, { kind: 'blob.link', repository: 'team/only', digest: blob.digest, size: blob.size }),
      testChange('us', 2, 1002, { kind: 'manifest.put', repository: 'team/only', digest: testDigest(7), mediaType: TEST_MANIFEST_TYPE, size: 7, tag: 'v1' }),
    ]);

    const refused = await cp.request('DELETE', '/api/v1/regions/us?purge=true');
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'CONTENT_UNREPLICATED', detail: { region: 'us', total: 3, unrelayed: 0 } });
    expect(refused.body.error.detail.items).toEqual([`blob team/only@${blob.digest}`, `manifest team/only@${testDigest(7)}`, 'tag team/only:v1']);
    expect(refused.body.error.message).toMatch(/^region "us" holds 3 catalog items no other active region holds \(blob team\/only@sha256:.*\): nothing purged/);
    // Drained, nothing deleted: it still serves what it holds, and replicates from it go on.
    expect((await regionsOf(cp)).find((r) => r.name === 'us')?.state).toBe('draining');
    expect(us.hasBlob('team/only', blob.digest)).toBe(true);

    for (const id of [link!, put!]) expect((await cp.request('POST', `/api/v1/replication/${id}/eu`, { outcome: 'done' })).status).toBe(204);
    const purged = await cp.request('DELETE', '/api/v1/regions/us?purge=true');
    expect(purged.status).toBe(200);
    expect(purged.body).toEqual({
      region: 'us',
      deleted: { repositories: 1, manifests: 0, tags: 0, blobLinks: 1, blobs: 1, bytes: blob.size, discardedChanges: 0 },
      replicationsRemoved: 0,
    });
    expect(us.hasBlob('team/only', blob.digest)).toBe(false);
    expect(await us.storedDigest(blob.digest)).toBeUndefined();
    expect((await regionsOf(cp)).map((r) => r.name)).toEqual(['eu']);
    // The changes us made stay, and eu's copies of them.
    expect(await rowsOf(cp, 'eu')).toBe(2);
    // A job that was still running against us when it went reports into the void, and is done with.
    expect((await cp.request('POST', `/api/v1/replication/${link}/us`, { outcome: 'done' })).status).toBe(204);
    expect((await cp.request('POST', `/api/v1/replication/${link}/nowhere`, { outcome: 'done' })).status).toBe(204);

    const again = await cp.request('DELETE', '/api/v1/regions/us?purge=true');
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('REGION_UNKNOWN');
  });

  it('with force, deletes content only the region holds, and the region\'s replication rows', async () => {
    const cp = await controlPlane();
    const [eu, us] = [await region('eu'), await region('us')];
    await register(cp, 'eu', eu.address, 1);
    await register(cp, 'us', us.address, 2);
    await cp.deliver([testChange('eu', 1, 1001, { kind: 'manifest.put', repository: 'team/app', digest: testDigest(1), mediaType: TEST_MANIFEST_TYPE, size: 1, tag: 'v1' })]);
    await cp.deliver([testChange('us', 1, 1002, { kind: 'manifest.put', repository: 'team/us', digest: testDigest(2), mediaType: TEST_MANIFEST_TYPE, size: 2, tag: 'v1' })]);
    expect(await rowsOf(cp, 'us')).toBe(1);

    const purged = await cp.request('DELETE', '/api/v1/regions/us?purge=true&force=true');
    expect(purged.status).toBe(200);
    expect(purged.body).toMatchObject({ region: 'us', replicationsRemoved: 1 });
    expect(await rowsOf(cp, 'us')).toBe(0);
    expect((await regionsOf(cp)).map((r) => r.name)).toEqual(['eu']);
  });

  it('names a region it cannot reach, or one answering under another name; either stays draining with nothing deleted', async () => {
    const cp = await controlPlane();
    const eu = await region('eu');
    const blob = await eu.addBlob('team/app', Buffer.from('eu holds this'));
    await register(cp, 'eu', eu.address, 1);
    const closed = `127.0.0.1:${await freePort()}`;
    await register(cp, 'gone', closed, 2);
    // An address that now leads to another region.
    await register(cp, 'ap', eu.address, 3);

    const unreachable = await cp.request('DELETE', '/api/v1/regions/gone?purge=true');
    expect(unreachable.status).toBe(502);
    expect(unreachable.body.error.code).toBe('REGION_UNREACHABLE');
    expect(unreachable.body.error.message).toMatch(new RegExp(`^region "gone" could not be reached at ${closed} to purge its data \\(.+\\); it stays draining: `));

    const elsewhere = await cp.request('DELETE', '/api/v1/regions/ap?purge=true');
    expect(elsewhere.status).toBe(502);
    expect(elsewhere.body.error).toMatchObject({ code: 'REGION_REFUSED', message: expect.stringContaining('this is region "eu", not "ap"') });
    expect(eu.calls.Purge).toBe(1);
    expect(eu.hasBlob('team/app', blob.digest)).toBe(true);

    const states = Object.fromEntries((await regionsOf(cp)).map((r) => [r.name, r.state]));
    expect(states).toEqual({ ap: 'draining', eu: 'active', gone: 'draining' });
  });

  it('runs one purge of a region at a time, and refuses to register the region meanwhile', async () => {
    const cp = await controlPlane();
    const us = await region('us');
    await register(cp, 'us', us.address, 1);
    const release = us.hold('Purge');
    const purging = cp.request('DELETE', '/api/v1/regions/us?purge=true');
    await until(() => us.inFlight > 0);

    const twice = await cp.request('DELETE', '/api/v1/regions/us?purge=true');
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('PURGE_RUNNING');
    const readd = await cp.request('POST', '/api/v1/regions', { ...testRegion('us', 1), grpc: us.address });
    expect(readd.status).toBe(409);
    expect(readd.body.error.code).toBe('PURGE_RUNNING');

    release();
    expect((await purging).status).toBe(200);
    expect(await regionsOf(cp)).toEqual([]);
  });

  it('waits for a replication job a worker took before the region drained, then purges', async () => {
    const cp = await controlPlane();
    const [eu, us] = [await region('eu'), await region('us')];
    await register(cp, 'eu', eu.address, 1);
    await register(cp, 'us', us.address, 2);
    // A worker takes the job replicating eu's change to us, and works on it until told to end.
    let taken!: () => void;
    const working = new Promise<void>((resolve) => (taken = resolve));
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const worker = new Worker(
      REPLICATION_QUEUE,
      async () => {
        taken();
        await finished;
      },
      { connection: { url: cp.config.redisUrl }, prefix: cp.config.queuePrefix },
    );
    started.push({
      close: async () => {
        finish();
        await worker.close();
      },
    });
    await cp.deliver([testChange('eu', 1, 1001, { kind: 'blob.link', repository: 'team/app', digest: testDigest(1), size: 1 })]);
    await working;

    const purging = cp.request('DELETE', '/api/v1/regions/us?purge=true');
    await until(async () => (await regionsOf(cp)).find((r) => r.name === 'us')?.state === 'draining', { intervalMs: 20 });
    // Drained, and a second later still not asked to purge: the job is still writing to it.
    await sleep(1000);
    expect(us.calls.Purge).toBe(0);
    finish();
    expect((await purging).status).toBe(200);
    expect(us.calls.Purge).toBeGreaterThanOrEqual(2);
  });
});

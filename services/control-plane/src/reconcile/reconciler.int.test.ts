import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { replicateJobId } from '@meridian/proto';
import { RegionStore } from '../store/regions.js';
import { startTestControlPlane, testChange, testDigest, testRegion, TEST_MANIFEST_TYPE, type TestControlPlane } from '../testing/test-control-plane.js';
import { Reconciler, type RegionInventory } from './reconciler.js';
import { ReconcileStore } from './store.js';

// Reconciliation compares what a region reports holding with the catalog on a real control
// plane database: what the region lacks, or holds pending, is replicated to it again, and what it
// holds that the catalog deleted is deleted there again (once its outbox is relayed).

const started: TestControlPlane[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((cp) => cp.close()));
});

const digest = testDigest;
const blobLink = (seq: number, n: number) => testChange('eu', seq, 1000 + seq, { kind: 'blob.link', repository: 'rec/app', digest: digest(n), size: n });

/** A control plane with regions eu and us, eu's writes delivered and every replication to us done. */
async function catalogReplicatedToUs(): Promise<{ cp: TestControlPlane; ids: string[] }> {
  const cp = await startTestControlPlane();
  started.push(cp);
  for (const [index, name] of ['eu', 'us'].entries()) expect((await cp.request('POST', '/api/v1/regions', testRegion(name, index + 1))).status).toBe(201);
  const ids = await cp.deliver([
    blobLink(1, 1),
    blobLink(2, 2),
    testChange('eu', 3, 1003, { kind: 'manifest.put', repository: 'rec/app', digest: digest(100), mediaType: TEST_MANIFEST_TYPE, size: 100, tag: 'v1' }),
    testChange('eu', 4, 1004, { kind: 'manifest.put', repository: 'rec/app', digest: digest(200), mediaType: TEST_MANIFEST_TYPE, size: 200, tag: 'v2' }),
    blobLink(5, 3),
    testChange('eu', 6, 1006, { kind: 'blob.unlink', repository: 'rec/app', digest: digest(3) }),
  ]);
  for (const id of ids) expect((await cp.request('POST', `/api/v1/replication/${id}/us`, { outcome: 'done' })).status).toBe(204);
  return { cp, ids };
}

/** us holds blob 1, blob 2 pending, the unlinked blob 3, manifest 100 tagged v1; not manifest 200 nor v2. */
const usInventory: RegionInventory = {
  manifests: [{ repository: 'rec/app', digest: digest(100) }],
  tags: [{ repository: 'rec/app', tag: 'v1', digest: digest(100), hlc: 1003n, origin: 'eu' }],
  blobs: [
    { repository: 'rec/app', digest: digest(1), state: 'present' },
    { repository: 'rec/app', digest: digest(2), state: 'pending' },
    { repository: 'rec/app', digest: digest(3), state: 'present' },
  ],
  unrelayed: 0,
};

function reconciler(cp: TestControlPlane, settleMs: number, seen: Array<{ region: string; verify: boolean }> = [], inventory = usInventory): Reconciler {
  return new Reconciler({
    regions: new RegionStore(cp.controlPlane.pool),
    store: new ReconcileStore(cp.controlPlane.pool),
    requeue: cp.controlPlane.requeue,
    logger: pino({ level: 'silent' }),
    intervalMs: 0,
    settleMs,
    readInventory: async (region, options) => {
      seen.push({ region: region.name, verify: options.verify });
      return inventory;
    },
  });
}

const pendingRows = async (cp: TestControlPlane) =>
  (await cp.controlPlane.pool.query<{ change_id: string }>("SELECT change_id::text FROM replications WHERE region = 'us' AND state = 'pending' ORDER BY change_id")).rows.map(
    (row) => row.change_id,
  );

describe('reconciliation', () => {
  it('replicates again what a region lacks and the blobs it holds pending, and the delete of what it holds that the catalog deleted', async () => {
    const { cp, ids } = await catalogReplicatedToUs();
    const seen: Array<{ region: string; verify: boolean }> = [];
    const summaries = await reconciler(cp, 0, seen).run({ region: 'us', verify: true });
    expect(seen).toEqual([{ region: 'us', verify: true }]);
    // Missing: manifest 200 and its tag v2 (one change wrote both); pending: blob 2; extra: blob 3,
    // whose unlink (change 6) goes to us again, to be applied with its clock.
    expect(summaries).toEqual([{ region: 'us', missing: 2, extra: 1, pendingBlobs: 1, repaired: 3, unrelayed: 0 }]);
    expect(await pendingRows(cp)).toEqual([ids[1], ids[3], ids[5]]);
    const queued = (await cp.jobs.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).map((job) => job.id);
    expect(queued).toEqual(expect.arrayContaining([replicateJobId(ids[1]!, 'us'), replicateJobId(ids[3]!, 'us'), replicateJobId(ids[5]!, 'us')]));
    const unlink = (await cp.jobs.getJob(replicateJobId(ids[5]!, 'us')))!;
    expect(unlink.data.change).toMatchObject({ hlc: '1006', origin: 'eu', body: { kind: 'blob.unlink', repository: 'rec/app', digest: digest(3) } });
  });

  it('deletes nothing while the region has changes in its outbox: the catalog may not know its latest writes', async () => {
    const { cp, ids } = await catalogReplicatedToUs();
    const summaries = await reconciler(cp, 0, [], { ...usInventory, unrelayed: 2 }).run({ region: 'us', verify: false });
    expect(summaries).toEqual([{ region: 'us', missing: 2, extra: 1, pendingBlobs: 1, repaired: 2, unrelayed: 2 }]);
    expect(await pendingRows(cp)).toEqual([ids[1], ids[3]]);
  });

  it('a tag the region holds pointing elsewhere, with an older clock, gets the catalog\'s newest write again', async () => {
    const { cp, ids } = await catalogReplicatedToUs();
    const inventory: RegionInventory = {
      ...usInventory,
      manifests: [...usInventory.manifests, { repository: 'rec/app', digest: digest(200) }],
      tags: [
        { repository: 'rec/app', tag: 'v1', digest: digest(200), hlc: 1002n, origin: 'eu' },
        { repository: 'rec/app', tag: 'v2', digest: digest(200), hlc: 1004n, origin: 'eu' },
      ],
      blobs: usInventory.blobs.filter((blob) => blob.digest !== digest(3)),
    };
    const summaries = await reconciler(cp, 0, [], inventory).run({ region: 'us', verify: false });
    expect(summaries).toEqual([{ region: 'us', missing: 1, extra: 0, pendingBlobs: 1, repaired: 2, unrelayed: 0 }]);
    expect(await pendingRows(cp)).toEqual([ids[1], ids[2]]);
  });

  // A tag write older than a delete of its manifest that arrives after a newer push brought the
  // manifest back is a tombstone naming the delete: a region still holding the tag (it never got
  // the delete) is sent that delete again, which takes there the tags older than it.
  it('a region holding a tag write that a delete of its manifest took gets the delete again, though a newer push kept the manifest', async () => {
    const cp = await startTestControlPlane();
    started.push(cp);
    for (const [index, name] of ['eu', 'us', 'ap'].entries()) expect((await cp.request('POST', '/api/v1/regions', testRegion(name, index + 1))).status).toBe(201);
    const put = (origin: string, seq: number, hlc: number, tag?: string) =>
      testChange(origin, seq, hlc, { kind: 'manifest.put', repository: 'rec/revived', digest: digest(300), mediaType: TEST_MANIFEST_TYPE, size: 300, ...(tag ? { tag } : {}) });
    const ids = [
      ...(await cp.deliver([put('eu', 1, 10_000)])),
      ...(await cp.deliver([testChange('eu', 2, 20_000, { kind: 'manifest.delete', repository: 'rec/revived', digest: digest(300) })])),
      ...(await cp.deliver([put('eu', 3, 25_000, 'T')])),
      ...(await cp.deliver([put('us', 1, 15_000, 'T0')])),
    ];
    for (const id of ids) expect((await cp.request('POST', `/api/v1/replication/${id}/ap`, { outcome: 'done' })).status).toBe(204);
    const inventory: RegionInventory = {
      manifests: [{ repository: 'rec/revived', digest: digest(300) }],
      tags: [
        { repository: 'rec/revived', tag: 'T', digest: digest(300), hlc: 25_000n, origin: 'eu' },
        { repository: 'rec/revived', tag: 'T0', digest: digest(300), hlc: 15_000n, origin: 'us' },
      ],
      blobs: [],
      unrelayed: 0,
    };
    expect(await reconciler(cp, 0, [], inventory).run({ region: 'ap', verify: false })).toEqual([{ region: 'ap', missing: 0, extra: 1, pendingBlobs: 0, repaired: 1, unrelayed: 0 }]);
    const pending = await cp.controlPlane.pool.query<{ change_id: string }>("SELECT change_id::text FROM replications WHERE region = 'ap' AND state = 'pending'");
    expect(pending.rows.map((row) => row.change_id)).toEqual([ids[1]]);
  });

  it('leaves alone what changed within the settling time: it may still be on its way', async () => {
    const { cp } = await catalogReplicatedToUs();
    expect(await reconciler(cp, 60_000).run({ region: 'us', verify: false })).toEqual([{ region: 'us', missing: 0, extra: 0, pendingBlobs: 0, repaired: 0, unrelayed: 0 }]);
    expect(await pendingRows(cp)).toEqual([]);
  });

  it('passes over regions not taking work, and names an unknown one', async () => {
    const { cp } = await catalogReplicatedToUs();
    expect((await cp.request('DELETE', '/api/v1/regions/us')).status).toBe(202);
    const seen: Array<{ region: string; verify: boolean }> = [];
    expect(await reconciler(cp, 0, seen).run({ region: 'us', verify: false })).toEqual([]);
    expect(seen).toEqual([]);
    const answer = await cp.request('POST', '/api/v1/reconcile?region=nowhere');
    expect(answer.status).toBe(404);
    expect(answer.body.error.message).toContain('nowhere');
  });
});

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { Metadata, MetadataStores } from './metadata.js';
import type { ManifestPush, ManifestPushResult } from './manifest-push.js';
import { localClock } from './clock.js';
import { CHANGE_CHANNEL, type MetadataChange } from './changes.js';
import { OUTBOX_CHANNEL } from './outbox.js';

/**
 * A manifest push and a manifest DELETE racing on one row, run deterministically: each side on
 * a connection of its own, in an open transaction, the test deciding who commits when. Whether
 * the DELETE is really waiting is read from pg_stat_activity, not from a timer.
 */
let database: TestDatabase;
let pool: pg.Pool;
let metadata: Metadata;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  // The database is dropped WITH (FORCE) at the end, which may end an idle client the pool has
  // not closed yet; that is expected, not a failure.
  pool.on('error', () => undefined);
  metadata = new Metadata(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

/** Local writes of a region named `test`. */
const CLOCK = localClock('test');

/** A local push of manifest `n` (by `tag` when given), listing `children` (an index's manifests). */
function pushOf(repository: string, n: number, options: { tag?: string; children?: ManifestPush['children'] } = {}): ManifestPush {
  const digest = `sha256:${String(n).padStart(64, '0')}`;
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const payload = Buffer.from(`{"n":${n}}`);
  return {
    repository,
    digest,
    mediaType,
    payload,
    blobs: [],
    children: options.children ?? [],
    heldElsewhere: new Map(),
    ...(options.tag ? { tag: options.tag } : {}),
    clock: CLOCK,
    change: { kind: 'manifest.put', repository, digest, mediaType, size: payload.length, ...(options.tag ? { tag: options.tag } : {}) },
    audit: { region: 'test', action: 'push', target: `${repository}:${options.tag ?? digest}`, outcome: 'success' },
    announce: [],
  };
}

/** A connection with an open transaction, and its stores. */
async function openTransaction(): Promise<{ client: pg.PoolClient; stores: MetadataStores; pid: number }> {
  const client = await pool.connect();
  await client.query('BEGIN');
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return { client, stores: new MetadataStores(client), pid };
}

type OpenTransaction = Awaited<ReturnType<typeof openTransaction>>;

/** Runs `race` with a pushing and a deleting transaction open, and releases both however it ends. */
async function withPushAndDelete(race: (push: OpenTransaction, remove: OpenTransaction) => Promise<void>): Promise<void> {
  const push = await openTransaction();
  const remove = await openTransaction();
  try {
    await race(push, remove);
  } finally {
    push.client.release();
    remove.client.release();
  }
}

async function waitUntilBlockedOnALock(pid: number): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const { rows } = await pool.query<{ wait_event_type: string | null }>('SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (rows[0]?.wait_event_type === 'Lock') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`backend ${pid} never waited on a lock`);
}

/** Pushes in `push`'s transaction, runs `meanwhile` once the push waits for a lock, then commits the push. */
async function pushWaiting(push: OpenTransaction, manifest: ManifestPush, meanwhile: () => Promise<void>): Promise<ManifestPushResult> {
  const storing = push.stores.manifestPushes.push(manifest);
  await waitUntilBlockedOnALock(push.pid);
  await meanwhile();
  const pushed = await storing;
  await push.client.query('COMMIT');
  return pushed;
}

/** The push wrote the tag past a delete's clock and cleared the delete's tombstone. */
async function expectTagPast(deleted: bigint, pushed: ManifestPushResult, repositoryId: number, tag: string): Promise<void> {
  expect(pushed.stored && pushed.hlc).toBeGreaterThan(deleted);
  expect((await metadata.tags.clockOf(repositoryId, tag))!.hlc).toBeGreaterThan(deleted);
  expect(await metadata.tags.tombstoneOf(repositoryId, tag)).toBeUndefined();
}

describe('a manifest push racing a DELETE of the same manifest', () => {
  it('a re-push holds the row until it commits: the DELETE waits, then removes the new tag too and reports it', async () => {
    const manifest = pushOf('race/tag', 1);
    expect((await metadata.manifestPushes.push(manifest)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/tag');

    await withPushAndDelete(async (push, remove) => {
      // The push finds the manifest already stored (the re-push path) and tags it.
      expect((await push.stores.manifestPushes.push({ ...manifest, tag: 'fresh' })).stored).toBe(true);
      const deleting = remove.stores.manifests.delete(repositoryId, manifest.digest, { local: CLOCK });
      await waitUntilBlockedOnALock(remove.pid);
      await push.client.query('COMMIT');

      const result = await deleting;
      await remove.client.query('COMMIT');
      // The tag committed while the DELETE waited is named, so caches and peers hear of it.
      expect(result).toMatchObject({ deleted: true, tags: ['fresh'], referencedBy: [] });
      expect((await metadata.manifests.findByTag('race/tag', 'fresh')).found).toBeUndefined();
    });
  });

  it('a DELETE that goes first makes a re-push store the manifest afresh instead of tagging a deleted row', async () => {
    const manifest = pushOf('race/first', 2);
    expect((await metadata.manifestPushes.push(manifest)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/first');

    await withPushAndDelete(async (push, remove) => {
      expect((await remove.stores.manifests.delete(repositoryId, manifest.digest, { local: CLOCK })).deleted).toBe(true);
      const storing = push.stores.manifestPushes.push({ ...manifest, tag: 'after' });
      await waitUntilBlockedOnALock(push.pid);
      await remove.client.query('COMMIT');

      expect((await storing).stored).toBe(true);
      await push.client.query('COMMIT');
      const found = await metadata.manifests.findByTag('race/first', 'after');
      expect(found.found?.digest).toBe(manifest.digest);
    });
  });

  // The push's statement waits for the DELETE's lock on the row, and its snapshot, taken before
  // the DELETE committed, holds neither the deletion nor the tombstone: it must not store the
  // manifest below that tombstone and leave it in place, or a region applying both changes in
  // clock order would end with the manifest deleted while this one holds it.
  it('a re-push that waited for a DELETE is stamped past its tombstone, and keeps it', async () => {
    const manifest = pushOf('race/tombstone', 6);
    expect((await metadata.manifestPushes.push(manifest)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/tombstone');

    await withPushAndDelete(async (push, remove) => {
      const deleted = (await remove.stores.manifests.delete(repositoryId, manifest.digest, { local: CLOCK })).hlc!;
      const pushed = await pushWaiting(push, manifest, () => remove.client.query('COMMIT').then(() => undefined));
      expect(pushed.stored && pushed.hlc).toBeGreaterThan(deleted);
      expect((await metadata.manifests.clockOf(repositoryId, manifest.digest))!.hlc).toBeGreaterThan(deleted);
      expect(await metadata.manifests.tombstoneOf(repositoryId, manifest.digest)).toEqual({ hlc: deleted, origin: CLOCK.origin });
    });
  });

  // The same for a tag: the push's tag write waits for the tag DELETE's lock on the tag's row.
  it('a push by tag that waited for a DELETE of the tag is stamped past its tombstone, and clears it', async () => {
    const manifest = pushOf('race/tag-tombstone', 7, { tag: 'moving' });
    expect((await metadata.manifestPushes.push(manifest)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/tag-tombstone');

    await withPushAndDelete(async (push, remove) => {
      const deleted = (await remove.stores.tags.delete(repositoryId, 'moving', CLOCK))!;
      const pushed = await pushWaiting(push, manifest, () => remove.client.query('COMMIT').then(() => undefined));
      await expectTagPast(deleted, pushed, repositoryId, 'moving');
    });
  });

  // ManifestStore.delete locks the manifest, then removes its tags. A push by one of those tags
  // must wait on the manifest before it takes the tag's row, or each would wait for the other.
  it('a push by tag waits on the manifest before it locks the tag, so a DELETE between its statements is not deadlocked', async () => {
    const manifest = pushOf('race/lock-order', 8, { tag: 'current' });
    expect((await metadata.manifestPushes.push(manifest)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/lock-order');

    await withPushAndDelete(async (push, remove) => {
      const locked = await remove.client.query<{ id: number }>('SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2 FOR UPDATE', [
        repositoryId,
        manifest.digest,
      ]);
      const pushed = await pushWaiting(push, manifest, async () => {
        await remove.client.query('DELETE FROM tags WHERE manifest_id = $1', [locked.rows[0]!.id]);
        await remove.client.query('COMMIT');
      });
      expect(pushed.stored).toBe(true);
      expect((await metadata.manifests.findByTag('race/lock-order', 'current')).found?.digest).toBe(manifest.digest);
    });
  });

  // While the push waits for a lock on its manifest, another push creates the tag (clearing the
  // tombstone the push's snapshot holds) and a DELETE removes it again, leaving a tombstone that
  // snapshot cannot see. The push must not write the tag below it.
  it('a push by tag whose snapshot holds a tag tombstone replaced meanwhile is stamped past the new one', async () => {
    const manifest = pushOf('race/retombstoned', 9, { tag: 'again' });
    const other = pushOf('race/retombstoned', 10, { tag: 'again' });
    expect((await metadata.manifestPushes.push(manifest)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/retombstoned');
    expect(await metadata.tags.delete(repositoryId, 'again', CLOCK)).toBeDefined();

    await withPushAndDelete(async (push, hold) => {
      await hold.client.query('SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 FOR UPDATE', [repositoryId, manifest.digest]);
      let deleted = 0n;
      const pushed = await pushWaiting(push, manifest, async () => {
        expect((await metadata.manifestPushes.push(other)).stored).toBe(true);
        deleted = (await metadata.tags.delete(repositoryId, 'again', CLOCK))!;
        await hold.client.query('ROLLBACK');
      });
      await expectTagPast(deleted, pushed, repositoryId, 'again');
    });
  });

  // The same for the manifest's tombstone: while the push of an index waits for a lock on its
  // child, a write replicated from another region stores the index (clearing the tombstone the
  // push's snapshot holds) and a DELETE removes it again.
  it('a push whose snapshot holds a manifest tombstone replaced meanwhile is stamped past the new one', async () => {
    const child = pushOf('race/remanifest', 12);
    expect((await metadata.manifestPushes.push(child)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/remanifest');
    const index = pushOf('race/remanifest', 13, { children: [{ digest: child.digest, size: child.payload.byteLength }] });
    expect((await metadata.manifestPushes.push(index)).stored).toBe(true);
    const first = (await metadata.manifests.delete(repositoryId, index.digest, { local: CLOCK })).hlc!;

    await withPushAndDelete(async (push, hold) => {
      await hold.client.query('SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 FOR UPDATE', [repositoryId, child.digest]);
      let deleted = 0n;
      const pushed = await pushWaiting(push, index, async () => {
        const replicated = { ...index, repositoryId, blobDigests: [], childDigests: [child.digest] };
        expect(await metadata.manifests.applyInsert(replicated, { hlc: first + 1n, origin: 'other' })).toBeDefined();
        deleted = (await metadata.manifests.delete(repositoryId, index.digest, { local: CLOCK })).hlc!;
        await hold.client.query('ROLLBACK');
      });
      expect(pushed.stored && pushed.hlc).toBeGreaterThan(deleted);
      expect((await metadata.manifests.clockOf(repositoryId, index.digest))!.hlc).toBeGreaterThan(deleted);
      expect(await metadata.manifests.tombstoneOf(repositoryId, index.digest)).toEqual({ hlc: deleted, origin: CLOCK.origin });
    });
  });

  it('an index pushed while its child is being deleted: whichever commits first wins, and no index is left listing a deleted child', async () => {
    const child = pushOf('race/index', 3);
    expect((await metadata.manifestPushes.push(child)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/index');
    const index = pushOf('race/index', 4, { children: [{ digest: child.digest, size: child.payload.byteLength }] });

    await withPushAndDelete(async (push, remove) => {
      // The push checks that the child is there, which holds it until the push commits.
      expect((await push.stores.manifestPushes.push(index)).stored).toBe(true);
      const deleting = remove.stores.manifests.delete(repositoryId, child.digest, { local: CLOCK });
      await waitUntilBlockedOnALock(remove.pid);
      await push.client.query('COMMIT');

      expect(await deleting).toEqual({ deleted: false, tags: [], referencedBy: [index.digest] });
      await remove.client.query('COMMIT');
      expect((await metadata.manifests.findByDigest('race/index', child.digest)).found?.digest).toBe(child.digest);
    });
  });
});

describe('a replicated tag write racing a local DELETE of the tag', () => {
  // review2 finding 4: the write checked for a tombstone in its snapshot, waited on the DELETE's
  // row, inserted once it committed, then cleared the newer tombstone without looking at its clock.
  it('an older write that waited for the DELETE leaves the tag deleted and the tombstone in place', async () => {
    const manifest = pushOf('race/tag-apply', 20, { tag: 'contested' });
    expect((await metadata.manifestPushes.push(manifest)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('race/tag-apply');
    const manifestId = (await metadata.manifests.findByDigest('race/tag-apply', manifest.digest)).found!.id;

    await withPushAndDelete(async (apply, remove) => {
      const deleted = (await remove.stores.tags.delete(repositoryId, 'contested', CLOCK))!;
      const applying = apply.stores.tags.applyPut(repositoryId, 'contested', manifestId, { hlc: deleted - 1n, origin: 'elsewhere' });
      await waitUntilBlockedOnALock(apply.pid);
      await remove.client.query('COMMIT');
      expect(await applying).toBe(false);
      await apply.client.query('COMMIT');
      expect(await metadata.tags.clockOf(repositoryId, 'contested')).toBeUndefined();
      expect(await metadata.tags.tombstoneOf(repositoryId, 'contested')).toEqual({ hlc: deleted, origin: 'test' });
    });
  });
});

describe('a local push after deletes stamped ahead of its clock', () => {
  it('is stamped past the manifest\'s and the tag\'s tombstones, clears the tag\'s and keeps the manifest\'s', async () => {
    const manifest = pushOf('clock/ahead', 5, { tag: 'latest' });
    expect((await metadata.manifestPushes.push(manifest)).stored).toBe(true);
    const repositoryId = await metadata.repositories.requireId('clock/ahead');
    // Deletes made by a region whose clock runs an hour ahead of this push's.
    const ahead = localClock('test', Date.now() + 3600_000);
    const tagDeleted = (await metadata.tags.delete(repositoryId, 'latest', ahead))!;
    const manifestDeleted = (await metadata.manifests.delete(repositoryId, manifest.digest, { local: ahead })).hlc!;

    const pushed = await metadata.manifestPushes.push(manifest);
    expect(pushed.stored).toBe(true);
    const tagClock = (await metadata.tags.clockOf(repositoryId, 'latest'))!.hlc;
    expect(tagClock).toBeGreaterThan(tagDeleted);
    expect((await metadata.manifests.clockOf(repositoryId, manifest.digest))!.hlc).toBeGreaterThan(manifestDeleted);
    // The outbox record carries the tag's write, the newest of the push.
    expect(pushed.stored && pushed.hlc).toBe(tagClock);
    expect(await metadata.tags.tombstoneOf(repositoryId, 'latest')).toBeUndefined();
    // Kept: a tag write older than the delete, still in flight, stays refused (ManifestStore.putTombstone).
    expect(await metadata.manifests.tombstoneOf(repositoryId, manifest.digest)).toEqual({ hlc: manifestDeleted, origin: ahead.origin });
  });
});

/** What a LISTEN connection of its own hears on the change and outbox channels, until `stop`. */
async function listenToNotices(): Promise<{ heard: Array<{ channel: string; payload: string | undefined }>; stop: () => Promise<void> }> {
  const listener = await pool.connect();
  const heard: Array<{ channel: string; payload: string | undefined }> = [];
  listener.on('notification', (notice) => heard.push({ channel: notice.channel, payload: notice.payload }));
  await listener.query(`LISTEN ${CHANGE_CHANNEL}`);
  await listener.query(`LISTEN ${OUTBOX_CHANNEL}`);
  return {
    heard,
    stop: async () => {
      await listener.query('UNLISTEN *');
      listener.release();
    },
  };
}

describe('the notices a push sends', () => {
  // The statement's NOTIFYs tell the region's other gateways what to drop from their caches and
  // wake the outbox relay; they are heard here on a LISTEN connection of its own.
  it('a stored push announces its changes and wakes the relay; a refused one sends nothing', async () => {
    const { heard, stop } = await listenToNotices();
    try {
      const refused = pushOf('notices/app', 11);
      const missingBlob = { digest: `sha256:${'f'.repeat(64)}`, size: 1 };
      const refusedChange: MetadataChange = { kind: 'manifest', repository: 'notices/app', digest: refused.digest };
      expect((await metadata.manifestPushes.push({ ...refused, blobs: [missingBlob], announce: [refusedChange] })).stored).toBe(false);
      const stored = pushOf('notices/app', 12, { tag: 'v1' });
      const changes: MetadataChange[] = [
        { kind: 'manifest', repository: 'notices/app', digest: stored.digest },
        { kind: 'tag', repository: 'notices/app', tag: 'v1' },
      ];
      expect((await metadata.manifestPushes.push({ ...stored, announce: changes })).stored).toBe(true);

      // Notices arrive in commit order: any the refused push had sent would come first.
      await vi.waitFor(() => expect(heard.length).toBeGreaterThanOrEqual(3), { timeout: 10_000, interval: 20 });
      expect(heard).toEqual([
        ...changes.map((change) => ({ channel: CHANGE_CHANNEL, payload: JSON.stringify(change) })),
        { channel: OUTBOX_CHANNEL, payload: '' },
      ]);
    } finally {
      await stop();
    }
  });

  // A blob's link goes to the outbox without a NOTIFY (LOCAL_LINK in blobs.ts says why): the push
  // of the manifest naming it wakes the relay, which then finds the links committed before it.
  it('a blob closed from a session or linked wakes no one; the push naming it wakes the relay once', async () => {
    const { heard, stop } = await listenToNotices();
    try {
      const repository = 'notices/blobs';
      await metadata.repositories.ensure(repository);
      const config = { digest: `sha256:${'c'.repeat(64)}`, size: 2 };
      const layer = { digest: `sha256:${'d'.repeat(64)}`, size: 3 };
      const session = '00000000-0000-4000-8000-0000000000b1';
      expect(await metadata.uploads.completeAsBlob(session, repository, config.digest, config.size, CLOCK.now)).toBe('linked');
      expect(await metadata.blobs.linkLocal(repository, layer.digest, layer.size, CLOCK.now)).toBe(true);
      expect((await metadata.manifestPushes.push({ ...pushOf(repository, 13, { tag: 'v1' }), blobs: [config, layer] })).stored).toBe(true);

      // Notices arrive in commit order: any the blobs had sent would come before the push's.
      await vi.waitFor(() => expect(heard.length).toBeGreaterThanOrEqual(1), { timeout: 10_000, interval: 20 });
      expect(heard).toEqual([{ channel: OUTBOX_CHANNEL, payload: '' }]);
      const recorded = (await metadata.outbox.oldest(1000)).map((entry) => entry.body).filter((body) => body.repository === repository);
      expect(recorded.map((body) => body.kind)).toEqual(['blob.link', 'blob.link', 'manifest.put']);
    } finally {
      await stop();
    }
  });
});

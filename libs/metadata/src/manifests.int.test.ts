import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { Metadata, MetadataStores } from './metadata.js';
import type { NewManifest } from './manifests.js';
import { localClock } from './clock.js';

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

function manifestOf(repositoryId: number, n: number, childDigests: string[] = []): NewManifest {
  return {
    repositoryId,
    digest: `sha256:${String(n).padStart(64, '0')}`,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    payload: Buffer.from(`{"n":${n}}`),
    blobDigests: [],
    childDigests,
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

describe('a manifest push racing a DELETE of the same manifest', () => {
  it('a re-push holds the row until it commits: the DELETE waits, then removes the new tag too and reports it', async () => {
    const repositoryId = await metadata.repositories.ensure('race/tag');
    const manifest = manifestOf(repositoryId, 1);
    await metadata.manifests.insert(manifest, CLOCK);

    await withPushAndDelete(async (push, remove) => {
      // The push finds the manifest already stored (the re-push path) and tags it.
      const stored = await push.stores.manifests.insert(manifest, CLOCK);
      const deleting = remove.stores.manifests.delete(repositoryId, manifest.digest, { local: CLOCK });
      await waitUntilBlockedOnALock(remove.pid);
      await push.stores.tags.put(repositoryId, 'fresh', stored.id, CLOCK);
      await push.client.query('COMMIT');

      const result = await deleting;
      await remove.client.query('COMMIT');
      // The tag committed while the DELETE waited is named, so caches and peers hear of it.
      expect(result).toMatchObject({ deleted: true, tags: ['fresh'], referencedBy: [] });
      expect((await metadata.manifests.findByTag('race/tag', 'fresh')).found).toBeUndefined();
    });
  });

  it('a DELETE that goes first makes a re-push store the manifest afresh instead of tagging a deleted row', async () => {
    const repositoryId = await metadata.repositories.ensure('race/first');
    const manifest = manifestOf(repositoryId, 2);
    await metadata.manifests.insert(manifest, CLOCK);

    await withPushAndDelete(async (push, remove) => {
      expect((await remove.stores.manifests.delete(repositoryId, manifest.digest, { local: CLOCK })).deleted).toBe(true);
      const storing = push.stores.manifests.insert(manifest, CLOCK);
      await waitUntilBlockedOnALock(push.pid);
      await remove.client.query('COMMIT');

      const stored = await storing;
      await push.stores.tags.put(repositoryId, 'after', stored.id, CLOCK);
      await push.client.query('COMMIT');
      const found = await metadata.manifests.findByTag('race/first', 'after');
      expect(found.found?.digest).toBe(manifest.digest);
    });
  });

  it('an index pushed while its child is being deleted: whichever commits first wins, and no index is left listing a deleted child', async () => {
    const repositoryId = await metadata.repositories.ensure('race/index');
    const child = manifestOf(repositoryId, 3);
    await metadata.manifests.insert(child, CLOCK);
    const index = manifestOf(repositoryId, 4, [child.digest]);

    await withPushAndDelete(async (push, remove) => {
      // The push checks that the child is there, which holds it until the push commits.
      expect([...(await push.stores.manifests.sizesInRepository(repositoryId, [child.digest])).keys()]).toEqual([child.digest]);
      const deleting = remove.stores.manifests.delete(repositoryId, child.digest, { local: CLOCK });
      await waitUntilBlockedOnALock(remove.pid);
      await push.stores.manifests.insert(index, CLOCK);
      await push.client.query('COMMIT');

      expect(await deleting).toEqual({ deleted: false, tags: [], referencedBy: [index.digest] });
      await remove.client.query('COMMIT');
      expect((await metadata.manifests.findByDigest('race/index', child.digest)).found?.digest).toBe(child.digest);
    });
  });
});

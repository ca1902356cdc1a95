import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClockStamp } from '@meridian/proto/clock';
import { createTestDatabase, everyOrder, type TestDatabase } from '@meridian/testkit';
import { Metadata } from './metadata.js';
import type { ManifestPush } from './manifest-push.js';

/**
 * Regions that see the same changes in different orders must end holding the same manifests and
 * tags. Each region here is a database of its own; a change is applied to another region the way
 * libs/registry's ReplicaService applies it (applyManifest, applyDelete), with the clock its
 * origin recorded.
 */

const REPOSITORY = 'converge/app';
const MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';

interface Region {
  name: string;
  database: TestDatabase;
  pool: pg.Pool;
  metadata: Metadata;
}

const regions: Region[] = [];

async function region(name: string): Promise<Region> {
  const database = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  pool.on('error', () => undefined);
  const made = { name, database, pool, metadata: new Metadata(pool) };
  regions.push(made);
  return made;
}

afterAll(async () => {
  for (const { pool, database } of regions) {
    await pool.end();
    await database.drop();
  }
});

function digestOf(n: number): string {
  return `sha256:${String(n).padStart(64, '0')}`;
}

/** A change as the origin's outbox records it: a manifest (with its tag) or a manifest delete. */
type Change = { kind: 'put'; n: number; tag?: string; children?: number[]; clock: ClockStamp } | { kind: 'delete'; n: number; clock: ClockStamp };

/** A local push of manifest `n` at `now`; returns the change its outbox recorded. */
async function push(at: Region, n: number, now: bigint, tag?: string, children: number[] = []): Promise<Change> {
  const digest = digestOf(n);
  const payload = Buffer.from(`{"n":${n}}`);
  const write: ManifestPush = {
    repository: REPOSITORY,
    digest,
    mediaType: MEDIA_TYPE,
    payload,
    blobs: [],
    children: children.map((child) => ({ digest: digestOf(child), size: Buffer.from(`{"n":${child}}`).length })),
    heldElsewhere: new Map(),
    ...(tag ? { tag } : {}),
    clock: { now, origin: at.name },
    change: { kind: 'manifest.put', repository: REPOSITORY, digest, mediaType: MEDIA_TYPE, size: payload.length, ...(tag ? { tag } : {}) },
    audit: { region: at.name, action: 'push', target: `${REPOSITORY}:${tag ?? digest}`, outcome: 'success' },
    announce: [],
  };
  const result = await at.metadata.manifestPushes.push(write);
  if (!result.stored) throw new Error(`push of ${digest} refused`);
  return { kind: 'put', n, ...(tag ? { tag } : {}), ...(children.length > 0 ? { children } : {}), clock: { hlc: result.hlc, origin: at.name } };
}

/** A local DELETE of manifest `n` at `now`; returns the change its outbox recorded. */
async function remove(at: Region, n: number, now: bigint): Promise<Change> {
  const repositoryId = await at.metadata.repositories.ensure(REPOSITORY);
  const deleted = await at.metadata.transaction((tx) => tx.manifests.delete(repositoryId, digestOf(n), { local: { now, origin: at.name } }));
  if (!deleted.deleted || deleted.hlc === undefined) throw new Error(`delete of ${digestOf(n)} refused`);
  return { kind: 'delete', n, clock: { hlc: deleted.hlc, origin: at.name } };
}

/** Applies another region's change, as ReplicaService.applyManifest and applyDelete do. */
async function apply(at: Region, change: Change): Promise<void> {
  const digest = digestOf(change.n);
  await at.metadata.transaction(async (tx) => {
    await tx.lockName(REPOSITORY, digest);
    if (change.kind === 'put' && change.tag !== undefined) await tx.lockName(REPOSITORY, `tag:${change.tag}`);
    const repositoryId = await tx.repositories.ensure(REPOSITORY);
    if (change.kind === 'delete') {
      await tx.manifests.delete(repositoryId, digest, { replicated: change.clock });
      return;
    }
    const payload = Buffer.from(`{"n":${change.n}}`);
    const childDigests = (change.children ?? []).map(digestOf);
    const stored = await tx.manifests.applyInsert({ repositoryId, digest, mediaType: MEDIA_TYPE, payload, blobDigests: [], childDigests }, change.clock);
    if (change.tag !== undefined) await tx.tags.applyPut(repositoryId, change.tag, stored?.id, change.clock);
  });
}

/** What a region serves: its manifests with their clocks, and its tags with what they name. */
async function holdings(at: Region): Promise<{ manifests: string[]; tags: string[] }> {
  const manifests = await at.pool.query<{ line: string }>(
    `SELECT m.digest || '@' || m.hlc || '/' || m.origin AS line FROM manifests m ORDER BY m.digest COLLATE "C"`,
  );
  const tags = await at.pool.query<{ line: string }>(
    `SELECT t.name || '->' || m.digest || '@' || t.hlc || '/' || t.origin AS line FROM tags t JOIN manifests m ON m.id = t.manifest_id ORDER BY t.name COLLATE "C"`,
  );
  return { manifests: manifests.rows.map((row) => row.line), tags: tags.rows.map((row) => row.line) };
}

let a: Region;
let b: Region;
let putFirst: Region;
let deleteFirst: Region;

beforeAll(async () => {
  [a, b, putFirst, deleteFirst] = await Promise.all([region('a'), region('b'), region('c'), region('d')]);
});

/**
 * A's delete and B's push, each delivered to the other, and to the other two regions in either
 * order.
 */
async function deliverBothWays(deleted: Change, retagged: Change): Promise<void> {
  await apply(a, retagged);
  await apply(b, deleted);
  await apply(putFirst, retagged);
  await apply(putFirst, deleted);
  await apply(deleteFirst, deleted);
  await apply(deleteFirst, retagged);
}

describe('a manifest DELETE in one region and a re-tag of the same manifest in another', () => {
  // review2 finding 1: B's push of a manifest it already held kept the row's old clock, so A's
  // older DELETE removed it (and B's newer tag) in B, while A, applying B's push, kept both.
  it('leave every region holding the manifest and the newer tag, whatever order the two changes arrive in', async () => {
    const first = await push(a, 1, 10n, 'T');
    for (const other of [b, putFirst, deleteFirst]) await apply(other, first);

    const deleted = await remove(a, 1, 20n);
    const retagged = await push(b, 1, 25n, 'T');
    expect(deleted.clock.hlc).toBe(20n);
    expect(retagged.clock.hlc).toBe(25n);

    await deliverBothWays(deleted, retagged);

    const expected = { manifests: [`${digestOf(1)}@25/b`], tags: [`T->${digestOf(1)}@25/b`] };
    for (const at of [a, b, putFirst, deleteFirst]) expect({ region: at.name, ...(await holdings(at)) }).toEqual({ region: at.name, ...expected });
  });

  // A DELETE takes every tag written before it, even where a newer push of the manifest keeps
  // the manifest: in clock order the old tag goes with the delete and the push brings only its own.
  it('older tags of the manifest go with the DELETE even where a newer push keeps the manifest', async () => {
    const first = await push(a, 2, 10n, 'old');
    for (const other of [b, putFirst, deleteFirst]) await apply(other, first);

    const deleted = await remove(a, 2, 20n);
    const retagged = await push(b, 2, 25n, 'new');

    await deliverBothWays(deleted, retagged);

    const expected = { manifests: [`${digestOf(1)}@25/b`, `${digestOf(2)}@25/b`], tags: [`T->${digestOf(1)}@25/b`, `new->${digestOf(2)}@25/b`] };
    for (const at of [a, b, putFirst, deleteFirst]) expect({ region: at.name, ...(await holdings(at)) }).toEqual({ region: at.name, ...expected });
  });
});

describe('a push by a tag written ahead of the clock', () => {
  // A push by a tag whose write is ahead of this region's clock is moved past it; the manifest's
  // row takes that same clock, the one other regions store it with, so a later DELETE here is
  // stamped past the manifest everywhere.
  it('stamps the manifest with the tag\'s clock: deleted here afterwards, it is deleted everywhere', async () => {
    const ahead = await push(b, 5, 25n, 'ahead');
    const pushed = await push(b, 3, 22n, 'ahead');
    expect(pushed.clock.hlc).toBe(26n);
    const moved = await push(b, 4, 23n, 'ahead');
    const deleted = await remove(b, 3, 24n);
    for (const change of [ahead, pushed, moved, deleted]) await apply(a, change);

    const expected = await holdings(b);
    expect(expected.manifests).not.toContain(`${digestOf(3)}@26/b`);
    expect(await holdings(a)).toEqual(expected);
  });
});

/**
 * Applies `changes` in every order, each order to a region of its own that first applied
 * `before`; returns what each of those regions holds.
 */
async function holdingsInEveryOrder(before: readonly Change[], changes: readonly Change[]): Promise<Array<{ order: string; manifests: string[]; tags: string[] }>> {
  const held = [];
  for (const order of everyOrder(changes)) {
    const at = await region(`order-${held.length}`);
    for (const change of [...before, ...order]) await apply(at, change);
    held.push({ order: order.map((change) => `${change.kind}@${change.clock.hlc}`).join(', '), ...(await holdings(at)) });
  }
  return held;
}

describe('tag writes of a manifest that a newer DELETE removed, whatever order the changes arrive in', () => {
  // In clock order: T0 -> M1 at 15, M1 deleted at 20 (taking T0), M1 pushed again by T at 25. A
  // region that got the push before the tag write must still know of the delete at 20 (the push
  // removed its tombstone), or it accepts T0 at 15 that every other region dropped.
  it('a tag write older than the DELETE stays lost though a newer push brought the manifest back', async () => {
    const [x, y, z] = await Promise.all([region('x'), region('y'), region('z')]);
    const first = await push(x, 11, 10n);
    for (const other of [y, z]) await apply(other, first);
    const tagged = await push(z, 11, 15n, 'T0');
    const deleted = await remove(x, 11, 20n);
    const retagged = await push(y, 11, 25n, 'T');

    const expected = { manifests: [`${digestOf(11)}@25/y`], tags: [`T->${digestOf(11)}@25/y`] };
    const held = await holdingsInEveryOrder([first], [tagged, deleted, retagged]);
    expect(held).toEqual(held.map(({ order }) => ({ order, ...expected })));
  });

  // In clock order: T -> M2 at 5, T -> M1 at 10, M1 deleted at 20 (taking T). The move to M1
  // overwrote T -> M2, so nothing brings T back: not T -> M2 arriving after the delete took T,
  // nor T -> M2 held when the move to M1 arrives refused by the delete.
  it('a tag the DELETE took is not brought back by an older write of it naming another manifest', async () => {
    const [x, y, z] = await Promise.all([region('x2'), region('y2'), region('z2')]);
    const older = await push(x, 12, 5n, 'T');
    const moved = await push(y, 13, 10n, 'T');
    await apply(z, moved);
    const deleted = await remove(z, 13, 20n);

    const expected = { manifests: [`${digestOf(12)}@5/x2`], tags: [] };
    const held = await holdingsInEveryOrder([], [older, moved, deleted]);
    expect(held).toEqual(held.map(({ order }) => ({ order, ...expected })));
  });
});

describe('a replicated DELETE of a manifest that an index of another region lists, whatever order the changes arrive in', () => {
  // In clock order: M1 tagged T0 at 10, T1 -> M1 at 15 (region z), an index listing M1 pushed at
  // 18 (region y), M1 deleted at 20 (region x, which had no index yet, so its own check passed).
  // A region that got the index first must not refuse the delete and keep M1 and its tags while
  // the others dropped them: a replicated delete is decided by the clocks alone, like every
  // other replicated write, and the index keeps listing a manifest that is gone everywhere.
  it('leaves every region without the manifest and its older tags, holding the index', async () => {
    const [x, y, z] = await Promise.all([region('x3'), region('y3'), region('z3')]);
    const first = await push(x, 21, 10n, 'T0');
    for (const other of [y, z]) await apply(other, first);
    const tagged = await push(z, 21, 15n, 'T1');
    const index = await push(y, 29, 18n, 'idx', [21]);
    const deleted = await remove(x, 21, 20n);

    const expected = { manifests: [`${digestOf(29)}@18/y3`], tags: [`idx->${digestOf(29)}@18/y3`] };
    const held = await holdingsInEveryOrder([first], [tagged, index, deleted]);
    expect(held).toEqual(held.map(({ order }) => ({ order, ...expected })));
  });
});

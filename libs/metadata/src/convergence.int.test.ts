import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClockStamp } from '@meridian/proto/clock';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
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
type Change = { kind: 'put'; n: number; tag?: string; clock: ClockStamp } | { kind: 'delete'; n: number; clock: ClockStamp };

/** A local push of manifest `n` at `now`; returns the change its outbox recorded. */
async function push(at: Region, n: number, now: bigint, tag?: string): Promise<Change> {
  const digest = digestOf(n);
  const payload = Buffer.from(`{"n":${n}}`);
  const write: ManifestPush = {
    repository: REPOSITORY,
    digest,
    mediaType: MEDIA_TYPE,
    payload,
    blobs: [],
    children: [],
    heldElsewhere: new Map(),
    ...(tag ? { tag } : {}),
    clock: { now, origin: at.name },
    change: { kind: 'manifest.put', repository: REPOSITORY, digest, mediaType: MEDIA_TYPE, size: payload.length, ...(tag ? { tag } : {}) },
    audit: { region: at.name, action: 'push', target: `${REPOSITORY}:${tag ?? digest}`, outcome: 'success' },
    announce: [],
  };
  const result = await at.metadata.manifestPushes.push(write);
  if (!result.stored) throw new Error(`push of ${digest} refused`);
  return { kind: 'put', n, ...(tag ? { tag } : {}), clock: { hlc: result.hlc, origin: at.name } };
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
    const stored = await tx.manifests.applyInsert({ repositoryId, digest, mediaType: MEDIA_TYPE, payload, blobDigests: [], childDigests: [] }, change.clock);
    if (stored && change.tag !== undefined) await tx.tags.applyPut(repositoryId, change.tag, stored.id, change.clock);
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

import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { createPool } from './db.js';
import { MetadataStores } from './metadata.js';

/**
 * A blob's regional state (the blob-state migration): present while the store holds its bytes,
 * pending while the region should hold it but does not. Only a present blob counts anywhere a
 * blob must be held: the pull lookup reports the state, and a mount or a manifest's check does
 * not find a pending blob. Any record of verified bytes (a push, a closed session, a mount)
 * makes it present again; its links outlive the loss.
 */
let database: TestDatabase;
let pool: pg.Pool;
let stores: MetadataStores;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ databaseUrl: database.url, max: 2 });
  pool.on('error', () => undefined);
  stores = new MetadataStores(pool);
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

function digestOf(seed: string): string {
  return `sha256:${seed.repeat(64).slice(0, 64)}`;
}

describe('blob state', () => {
  it('a lost blob turns pending once, naming every repository that links it, and counts nowhere until recorded again', async () => {
    const digest = digestOf('a');
    const first = await stores.repositories.ensure('state/first');
    const second = await stores.repositories.ensure('state/second');
    await stores.blobs.link(first, digest, 10);
    await stores.blobs.link(second, digest, 10);
    expect((await stores.blobs.findInRepository('state/first', digest)).found).toEqual({ size: 10, state: 'present' });

    expect((await stores.blobs.markPending([digest])).get(digest)?.sort()).toEqual(['state/first', 'state/second']);
    // Already pending: whoever asks next hears nothing, so the loss is reported once.
    expect(await stores.blobs.markPending([digest])).toEqual(new Map());
    expect((await stores.blobs.findInRepository('state/second', digest)).found).toEqual({ size: 10, state: 'pending' });
    expect(await stores.blobs.sizesInRepository(first, [digest])).toEqual(new Map());
    expect(await stores.blobs.findLinkedAnywhere(digest)).toBeUndefined();

    // A push of it records it present again; the links were kept.
    await stores.blobs.link(first, digest, 10);
    expect(await stores.blobs.sizesInRepository(second, [digest])).toEqual(new Map([[digest, 10]]));
    expect(await stores.blobs.findLinkedAnywhere(digest)).toEqual({ size: 10 });
  });

  it('a session closed as a pending blob makes it present again, as do bytes found back', async () => {
    const digest = digestOf('b');
    const repositoryId = await stores.repositories.ensure('state/session');
    await stores.blobs.link(repositoryId, digest, 20);
    await stores.blobs.markPending([digest]);
    const id = '00000000-0000-4000-8000-000000000001';
    expect(await stores.uploads.completeAsBlob(id, 'state/session', digest, 20, 1n)).toBe('linked');
    expect((await stores.blobs.findInRepository('state/session', digest)).found?.state).toBe('present');

    await stores.blobs.markPending([digest]);
    expect(await stores.blobs.markPresent(digest)).toBe(true);
    expect(await stores.blobs.markPresent(digest)).toBe(false);
    expect((await stores.blobs.findInRepository('state/session', digest)).found?.state).toBe('present');
  });

  it('of many digests at once, those present turn pending (one linked nowhere too, naming no repository), unknown ones are left out', async () => {
    const linked = digestOf('c');
    const unlinked = digestOf('e');
    const repositoryId = await stores.repositories.ensure('state/many');
    await stores.blobs.link(repositoryId, linked, 30);
    await stores.blobs.link(repositoryId, unlinked, 40);
    await stores.blobs.unlink(repositoryId, unlinked);
    const lost = await stores.blobs.markPending([linked, unlinked, digestOf('d'), linked]);
    expect(lost).toEqual(new Map([[linked, ['state/many']], [unlinked, []]]));
    expect(await stores.blobs.markPresent(digestOf('d'))).toBe(false);
  });
});

// distribution-spec v1.1 "Pushing blobs": a session ends once (closed as a blob or cancelled),
// and is BLOB_UPLOAD_UNKNOWN afterwards; its record is what says so.
describe('ending upload sessions', () => {
  it('a session ends once: a second completion or cancel changes nothing and links nothing', async () => {
    const completed = '00000000-0000-4000-8000-000000000002';
    const cancelled = '00000000-0000-4000-8000-000000000003';
    await stores.repositories.ensure('sessions/app');
    expect(await stores.uploads.isClosed(completed)).toBe(false);
    expect(await stores.uploads.completeAsBlob(completed, 'sessions/app', digestOf('f'), 5, 1n)).toBe('linked');
    expect(await stores.uploads.isClosed(completed)).toBe(true);
    expect(await stores.uploads.completeAsBlob(completed, 'sessions/app', digestOf('f'), 5, 2n)).toBe('not-open');
    expect(await stores.uploads.close(completed)).toBe(false);

    expect(await stores.uploads.close(cancelled)).toBe(true);
    expect(await stores.uploads.completeAsBlob(cancelled, 'sessions/app', digestOf('9'), 5, 3n)).toBe('not-open');
    expect((await stores.blobs.findInRepository('sessions/app', digestOf('9'))).found).toBeUndefined();
  });

  // The close, the blob and its link commit together or not at all: a session is never left
  // closed with its blob unlinked, whatever fails between making the repository and linking.
  it('a session of a repository that has no row yet stays open, nothing recorded, until the repository exists', async () => {
    const id = '00000000-0000-4000-8000-000000000004';
    expect(await stores.uploads.completeAsBlob(id, 'sessions/new', digestOf('8'), 5, 4n)).toBe('repository-unknown');
    expect(await stores.uploads.isClosed(id)).toBe(false);
    expect((await stores.blobs.findInRepository('sessions/new', digestOf('8'))).repositoryId).toBeUndefined();
    await stores.repositories.ensure('sessions/new');
    expect(await stores.uploads.completeAsBlob(id, 'sessions/new', digestOf('8'), 5, 5n)).toBe('linked');
    expect(await stores.uploads.isClosed(id)).toBe(true);
    expect((await stores.blobs.findInRepository('sessions/new', digestOf('8'))).found?.state).toBe('present');
  });

  it('a closed session of a repository that has no row is still not open once the repository exists', async () => {
    const id = '00000000-0000-4000-8000-000000000005';
    expect(await stores.uploads.close(id)).toBe(true);
    expect(await stores.uploads.completeAsBlob(id, 'sessions/gone', digestOf('7'), 5, 6n)).toBe('repository-unknown');
    await stores.repositories.ensure('sessions/gone');
    expect(await stores.uploads.completeAsBlob(id, 'sessions/gone', digestOf('7'), 5, 7n)).toBe('not-open');
    expect((await stores.blobs.findInRepository('sessions/gone', digestOf('7'))).found).toBeUndefined();
  });

  // Purging an abandoned session's bytes ends it: its token, still signed, is refused from then on.
  it('ends many sessions at once, each once', async () => {
    const ids = ['00000000-0000-4000-8000-000000000006', '00000000-0000-4000-8000-000000000007'];
    expect(await stores.uploads.close(ids[0]!)).toBe(true);
    expect(await stores.uploads.closeAll(ids)).toBe(1);
    expect(await stores.uploads.isClosed(ids[1]!)).toBe(true);
    expect(await stores.uploads.closeAll([])).toBe(0);
  });
});

// Migration 1733800000000 keeps the uploads table, unused from then on, so that a gateway of the
// release before it, still serving while the region's gateways are replaced, finds what it writes.
describe('the uploads table of the previous release', () => {
  it('takes the rows a gateway of the previous release writes, reads and deletes', async () => {
    const repositoryId = await stores.repositories.ensure('sessions/previous');
    const id = '00000000-0000-4000-8000-000000000010';
    await pool.query('INSERT INTO uploads (id, repository_id) VALUES ($1, $2)', [id, repositoryId]);
    expect((await pool.query('SELECT 1 FROM uploads WHERE id = $1', [id])).rowCount).toBe(1);
    expect((await pool.query('DELETE FROM uploads WHERE id = $1', [id])).rowCount).toBe(1);
  });
});

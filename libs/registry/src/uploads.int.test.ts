/**
 * Upload sessions over a real Postgres and a real blob store, as two gateway processes of one
 * region see them: two registries sharing the store's root, the database and the signing
 * secret, each with a BlobStore of its own (distribution-spec v1.1 "Pushing blobs").
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BlobStore, FilesystemDriver, PathNotFoundError, paths, type StoreWarning } from '@meridian/blobstore';
import { Metadata } from '@meridian/metadata';
import { BlobUploadUnknownError, DigestInvalidError, digestOf, parseDigest } from '@meridian/oci';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { LookupCache } from './lookup-cache.js';
import { createRegistry } from './registry.js';
import { UploadStateSigner } from './upload-state.js';

const SECRET = 'uploads-int-test-secret-0123456789abcdef';

let database: TestDatabase;
let pool: pg.Pool;
let root: string;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  // The database is dropped WITH (FORCE) at the end, which may end an idle client the pool has
  // not closed yet; that is expected, not a failure.
  pool.on('error', () => undefined);
  root = await mkdtemp(path.join(tmpdir(), 'meridian-uploads-'));
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** One gateway process of the region: its own blob store over the shared root. */
function gatewayProcess(driver = new FilesystemDriver(root), warn?: StoreWarning) {
  const metadata = new Metadata(pool);
  const blobStore = new BlobStore(driver, warn ? { warn } : {});
  const registry = createRegistry({
    metadata,
    blobStore,
    cache: new LookupCache({ maxEntries: 100 }),
    uploadSigner: new UploadStateSigner(SECRET),
    logger: { error: () => undefined, info: () => undefined },
    region: 'test',
  });
  return { uploads: registry.uploads, driver, metadata, blobStore };
}

describe('a session pushed as skopeo pushes (one PATCH, then an empty PUT, each on a new connection)', () => {
  // Each request may land on another gateway process; the PUT follows the Location the PATCH
  // answered with, as the spec asks ("Pushing a blob in chunks").
  it("closes a session of 256 KiB or more in another process from the digest the PATCH's Location carries, reading no bytes and no file about them", async () => {
    for (const size of [256 * 1024, 1024 * 1024 + 7]) {
      const [patching, closing] = [gatewayProcess(), gatewayProcess()];
      const bytes = randomBytes(size);
      const digest = digestOf(bytes, 'sha256');
      const started = patching.uploads.start('app');
      const patched = await patching.uploads.append(patching.uploads.resume('app', started.state.id, started.token), Readable.from([bytes]), {});
      expect(patched.size).toBe(size);
      const reads = vi.spyOn(closing.driver, 'reader');
      const notes = vi.spyOn(closing.driver, 'getContent');
      const state = closing.uploads.resume('app', patched.state.id, patched.token);
      expect(await closing.uploads.complete(state, digest)).toEqual({ digest, size });
      expect(reads).not.toHaveBeenCalled();
      expect(notes).not.toHaveBeenCalled();
    }
  });

  // A session's record ends before its file goes (a DELETE, a wrong digest); until the file is
  // gone, or after a late chunk made it again as a file the filesystem may give the same
  // identity, the digest the PATCH's Location carries must not make its bytes a blob.
  it('moves nothing into place from the carried digest once the record says the session ended', async () => {
    const [patching, closing] = [gatewayProcess(), gatewayProcess()];
    const bytes = randomBytes(300_000);
    const digest = digestOf(bytes, 'sha256');
    const started = patching.uploads.start('app');
    const patched = await patching.uploads.append(patching.uploads.resume('app', started.state.id, started.token), Readable.from([bytes]), {});
    expect(patched.state.noted?.digest).toBe(digest);
    expect(await patching.metadata.uploads.close(started.state.id)).toBe(true);
    const state = closing.uploads.resume('app', patched.state.id, patched.token);
    await expect(closing.uploads.complete(state, digest)).rejects.toBeInstanceOf(BlobUploadUnknownError);
    await expect(closing.driver.stat(paths.blob(parseDigest(digest)))).rejects.toThrow(PathNotFoundError);
  });
});

describe('a closing PUT whose bytes hash to another digest, when they cannot be removed', () => {
  // distribution-spec v1.1 "Pushing blobs": a digest that does not match the content is
  // DIGEST_INVALID. The storage refusing to unlink the session's bytes (EIO, which cannot be
  // caused for real) changes nothing the client is told: the leftover is reported and the
  // stale-upload purge removes it.
  it('answers DIGEST_INVALID, records the session ended, reports the leftover and purges it later', async () => {
    let refuseDelete = false;
    class RefusesUnlink extends FilesystemDriver {
      override async delete(relative: string): Promise<void> {
        if (refuseDelete && relative.includes('/data.')) throw Object.assign(new Error(`EIO: i/o error, unlink '${relative}'`), { code: 'EIO' });
        return super.delete(relative);
      }
    }
    const warnings: string[] = [];
    const gateway = gatewayProcess(new RefusesUnlink(root), (_details, message) => warnings.push(message));
    const started = gateway.uploads.start('app');
    const state = gateway.uploads.resume('app', started.state.id, started.token);
    await gateway.uploads.append(state, Readable.from([Buffer.from('abc')]), {});
    refuseDelete = true;
    await expect(gateway.uploads.complete(state, digestOf('abd', 'sha256'))).rejects.toBeInstanceOf(DigestInvalidError);
    expect(await gateway.metadata.uploads.isClosed(started.state.id)).toBe(true);
    expect(warnings).toEqual([expect.stringContaining('could not be removed')]);
    refuseDelete = false;
    expect((await gateway.blobStore.purgeStale(0, Date.now() + 60_000)).sessions).toEqual([started.state.id]);
    expect(await gateway.driver.list(paths.uploadDir(started.state.id))).toEqual([]);
  });
});

describe('the stale-upload purge (Distribution storage/purgeuploads.go)', () => {
  // A session's record ends before its files go, as a DELETE and a wrong digest do: no moment
  // has a session the record calls open whose bytes are gone, and a purge broken off between the
  // two leaves files the next purge removes, not an open session without its bytes.
  it('records a stale session ended before its files are removed', async () => {
    const gateway = gatewayProcess();
    const started = gateway.uploads.start('app');
    await gateway.uploads.append(gateway.uploads.resume('app', started.state.id, started.token), Readable.from([Buffer.from('abc')]), {});
    const endedWhenRemoved: boolean[] = [];
    const remove = gateway.driver.delete.bind(gateway.driver);
    vi.spyOn(gateway.driver, 'delete').mockImplementation(async (relative) => {
      if (relative === paths.uploadDir(started.state.id)) endedWhenRemoved.push(await gateway.metadata.uploads.isClosed(started.state.id));
      return remove(relative);
    });
    await vi.waitFor(async () => expect(await gateway.uploads.purgeStale(0)).toBeGreaterThan(0));
    expect(endedWhenRemoved).toEqual([true]);
    expect(await gateway.driver.list(paths.uploadDir(started.state.id))).toEqual([]);
  });
});

/**
 * BlobStore over FilesystemDriver in a temporary directory: verified monolithic puts, chunked
 * upload sessions (distribution-spec v1.1 "Pushing blobs"), reads and deletes, purging. Where
 * the layout matters the directory tree on disk is read directly (paths.ts documents it).
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import {
  BlobUnknownError,
  BlobUploadInvalidError,
  BlobUploadUnknownError,
  DigestInvalidError,
  SizeInvalidError,
  StorageFailedError,
  StorageFullError,
  UploadRangeInvalidError,
  digestOf,
  parseDigest,
  type Digest,
} from '@meridian/oci';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BlobStore, type NotedDigest } from './blob-store.js';
import { readAll } from './driver-suite.js';
import type { MoveOptions, StorageDriver } from './driver.js';
import { FilesystemDriver } from './fs-driver.js';
import { isUploadId, paths } from './paths.js';

let root: string;
let store: BlobStore;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'meridian-blob-store-'));
  store = new BlobStore(new FilesystemDriver(root));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Waits until a chunk of session `id` holds the session (its bytes under `data.<holder>`), and
 * returns that name. Its bytes may not be in the file yet: a large write gathers them in memory
 * first (fs-writer.ts).
 */
async function waitForChunkUnderWay(id: string): Promise<string> {
  let held: string | undefined;
  await vi.waitFor(() => {
    held = readdirSync(path.join(root, 'uploads', id)).find((name) => name.startsWith('data.'));
    expect(held).toBeDefined();
  });
  return held!;
}

/** Leaves session `id` held by the request `holder` names (`data.<holder>`, paths.ts), holding `bytes`. */
async function heldBy(id: string, holder: string, bytes = ''): Promise<string> {
  const file = path.join(root, 'uploads', id, `data.${holder}`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
  return file;
}

function digest(bytes: Uint8Array | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return parseDigest(digestOf(bytes, algorithm));
}

function source(...chunks: Array<Buffer | string>): Readable {
  return Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)));
}

/** A body that sends `bytes`, then fails when asked for more (a client that goes away mid-upload). */
function failingSource(bytes: Buffer, error: Error = new Error('client went away')): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(bytes);
        return;
      }
      this.destroy(error);
    },
  });
}

/** Every file (not folder) below `dir` of the store root, relative to that root. */
async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(relative: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(path.join(root, relative), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      const child = `${relative}/${entry.name}`;
      if (entry.isDirectory()) await walk(child);
      else found.push(child);
    }
  }
  await walk(dir);
  return found.sort();
}

async function readBlob(d: Digest, range?: { start: number; end?: number }): Promise<Buffer> {
  return readAll(await store.read(d, range));
}

async function expectRejection<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a ${type.name}`).toBeInstanceOf(type);
  return err as E;
}

/** A driver that cannot look at a held session's file (`data.<holder>`): the storage's EIO. */
class ClaimsUnreadable extends FilesystemDriver {
  override async stat(relative: string) {
    if (relative.includes('/data.')) throw Object.assign(new Error('EIO: i/o error, stat'), { code: 'EIO' });
    return super.stat(relative);
  }
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('put (distribution-spec v1.1 "Pushing blobs": monolithic upload)', () => {
  it('stores verified bytes under blobs/<algorithm>/<first two hex>/<hex> and nothing in staging', async () => {
    const bytes = Buffer.from('hello blob');
    const d = digest(bytes);
    expect(await store.put(d, source('hello ', 'blob'), bytes.length)).toEqual({ digest: d.value, size: bytes.length });
    expect(await filesUnder('blobs')).toEqual([`blobs/sha256/${d.encoded.slice(0, 2)}/${d.encoded}`]);
    expect(await filesUnder('staging')).toEqual([]);
    expect(await store.stat(d)).toEqual({ digest: d.value, size: bytes.length });
    expect((await readBlob(d)).toString()).toBe('hello blob');
  });

  it('stores without an expected size', async () => {
    const bytes = randomBytes(300_000);
    const d = digest(bytes);
    expect(await store.put(d, source(bytes))).toEqual({ digest: d.value, size: bytes.length });
    expect(sha256Hex(await readBlob(d))).toBe(d.encoded);
  });

  it('stores an empty blob', async () => {
    const d = digest('');
    expect(await store.put(d, source(), 0)).toEqual({ digest: d.value, size: 0 });
    expect((await readBlob(d)).length).toBe(0);
  });

  // distribution-spec v1.1 "Pushing blobs": content that does not match the digest is DIGEST_INVALID.
  it('refuses bytes that do not hash to the digest, keeping nothing in blobs/ or staging/', async () => {
    const claimed = digest('what the client claims');
    await expectRejection(store.put(claimed, source('what the client sent')), DigestInvalidError);
    expect(await filesUnder('blobs')).toEqual([]);
    expect(await filesUnder('staging')).toEqual([]);
    expect(await store.stat(claimed)).toBeUndefined();
    expect(await store.stat(digest('what the client sent'))).toBeUndefined();
  });

  // distribution-spec v1.1 "Pushing blobs": a Content-Length that does not match is SIZE_INVALID.
  it('refuses a body shorter than the expected size, keeping nothing', async () => {
    const bytes = Buffer.from('twelve bytes');
    await expectRejection(store.put(digest(bytes), source(bytes), bytes.length + 1), SizeInvalidError);
    expect(await filesUnder('blobs')).toEqual([]);
    expect(await filesUnder('staging')).toEqual([]);
  });

  it('refuses a body longer than the expected size, keeping nothing', async () => {
    const bytes = randomBytes(200_000);
    await expectRejection(store.put(digest(bytes), source(bytes.subarray(0, 100_000), bytes.subarray(100_000)), 1000), SizeInvalidError);
    expect(await filesUnder('blobs')).toEqual([]);
    expect(await filesUnder('staging')).toEqual([]);
  });

  it('accepts a put of a blob already held, leaving it as it was', async () => {
    const bytes = Buffer.from('already here');
    const d = digest(bytes);
    await store.put(d, source(bytes));
    expect(await store.put(d, source(bytes), bytes.length)).toEqual({ digest: d.value, size: bytes.length });
    expect((await readBlob(d)).toString()).toBe('already here');
    expect(await filesUnder('blobs')).toHaveLength(1);
    expect(await filesUnder('staging')).toEqual([]);
  });

  it('still verifies a put of a blob already held, and keeps the held blob intact', async () => {
    const bytes = Buffer.from('the real content');
    const d = digest(bytes);
    await store.put(d, source(bytes));
    await expectRejection(store.put(d, source('an impostor')), DigestInvalidError);
    await expectRejection(store.put(d, source(bytes), bytes.length + 3), SizeInvalidError);
    expect((await readBlob(d)).toString()).toBe('the real content');
    expect(await filesUnder('staging')).toEqual([]);
  });

  it('leaves nothing behind when the body fails mid-way', async () => {
    const bytes = randomBytes(100_000);
    const full = Buffer.concat([bytes, randomBytes(100_000)]);
    const err = await store.put(digest(full), failingSource(bytes), full.length).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(await filesUnder('blobs')).toEqual([]);
    expect(await filesUnder('staging')).toEqual([]);
    expect(await store.stat(digest(full))).toBeUndefined();
  });

  it('leaves nothing behind when many bodies fail mid-way at once', async () => {
    const attempts = Array.from({ length: 20 }, () => {
      const bytes = randomBytes(64 * 1024);
      return store.put(digest(Buffer.concat([bytes, bytes])), failingSource(bytes)).then(
        () => 'stored',
        () => 'failed',
      );
    });
    expect(new Set(await Promise.all(attempts))).toEqual(new Set(['failed']));
    expect(await filesUnder('blobs')).toEqual([]);
    expect(await filesUnder('staging')).toEqual([]);
  });

  // image-spec descriptor.md "SHA-512": sha512 is a registered algorithm.
  it('stores and verifies a sha512 blob under blobs/sha512/', async () => {
    const bytes = randomBytes(10_000);
    const d = digest(bytes, 'sha512');
    expect(await store.put(d, source(bytes), bytes.length)).toEqual({ digest: d.value, size: bytes.length });
    expect(await filesUnder('blobs')).toEqual([`blobs/sha512/${d.encoded.slice(0, 2)}/${d.encoded}`]);
    expect(Buffer.compare(await readBlob(d), bytes)).toBe(0);
    await expectRejection(store.put(digest(randomBytes(8), 'sha512'), source(bytes)), DigestInvalidError);
  });

  it('lets two puts of the same content at once both succeed with one intact blob', async () => {
    const bytes = randomBytes(500_000);
    const d = digest(bytes);
    const results = await Promise.all([store.put(d, source(bytes)), store.put(d, source(bytes)), store.put(d, source(bytes))]);
    for (const result of results) expect(result).toEqual({ digest: d.value, size: bytes.length });
    expect(sha256Hex(await readBlob(d))).toBe(d.encoded);
    expect(await filesUnder('staging')).toEqual([]);
  });
});

describe('read, stat and delete (distribution-spec v1.1 "Pulling blobs" / "Deleting blobs")', () => {
  it('reads an inclusive byte range', async () => {
    const bytes = Buffer.from('0123456789');
    const d = digest(bytes);
    await store.put(d, source(bytes));
    expect((await readBlob(d, { start: 3, end: 6 })).toString()).toBe('3456');
    expect((await readBlob(d, { start: 7 })).toString()).toBe('789');
    expect((await readBlob(d, { start: 0, end: 0 })).toString()).toBe('0');
    expect((await readBlob(d, { start: 9, end: 9 })).toString()).toBe('9');
  });

  it('throws BlobUnknownError for a missing blob and stat gives undefined', async () => {
    const d = digest('never stored');
    await expectRejection(store.read(d), BlobUnknownError);
    await expectRejection(store.read(d, { start: 0, end: 1 }), BlobUnknownError);
    expect(await store.stat(d)).toBeUndefined();
  });

  it('deletes a blob, and deleting it again succeeds', async () => {
    const d = digest('to delete');
    await store.put(d, source('to delete'));
    await store.delete(d);
    expect(await store.stat(d)).toBeUndefined();
    await expectRejection(store.read(d), BlobUnknownError);
    await store.delete(d);
    expect(await filesUnder('blobs')).toEqual([]);
  });

  it('deletes only the blob named', async () => {
    const a = digest('blob a');
    const b = digest('blob b');
    await store.put(a, source('blob a'));
    await store.put(b, source('blob b'));
    await store.delete(a);
    expect((await readBlob(b)).toString()).toBe('blob b');
  });

  // BlobStore.delete: "Readers already streaming it finish undisturbed".
  it('lets a reader that is streaming when the blob is deleted read every byte', async () => {
    const bytes = randomBytes(3 * 1024 * 1024);
    const d = digest(bytes);
    await store.put(d, source(bytes));
    const reader = await store.read(d);
    const iterator = reader[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as Buffer;
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThan(bytes.length);
    await store.delete(d);
    expect(await store.stat(d)).toBeUndefined();
    const chunks = [first];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) chunks.push(next.value as Buffer);
    expect(sha256Hex(Buffer.concat(chunks))).toBe(d.encoded);
  });

  it('lets a reader opened but not started when the blob is deleted read every byte', async () => {
    const bytes = randomBytes(1024 * 1024);
    const d = digest(bytes);
    await store.put(d, source(bytes));
    const reader = await store.read(d);
    await store.delete(d);
    expect(sha256Hex(await readAll(reader))).toBe(d.encoded);
  });
});

describe('upload sessions (distribution-spec v1.1 "Pushing blobs": chunked upload)', () => {
  it('creates a session with a server-made id and no bytes, writing nothing until its first chunk', async () => {
    const id = store.createUpload();
    expect(isUploadId(id)).toBe(true);
    expect(await store.uploadSize(id)).toBe(0);
    expect(await filesUnder('uploads')).toEqual([]);
    const other = store.createUpload();
    expect(other).not.toBe(id);
    await store.appendUpload(id, source('first'));
    expect(await filesUnder('uploads')).toEqual([`uploads/${id}/data`]);
  });

  // distribution-spec v1.1 "POST then PUT": the PUT's body is the whole blob.
  it('completes a session that had no chunk from the PUT body alone, leaving no session files', async () => {
    const bytes = randomBytes(5000);
    const d = digest(bytes);
    const id = store.createUpload();
    expect(await store.completeUpload(id, d, { lastChunk: { source: source(bytes), options: { start: 0, length: bytes.length } } })).toEqual({
      digest: d.value,
      size: bytes.length,
    });
    expect(Buffer.compare(await readBlob(d), bytes)).toBe(0);
    expect(await filesUnder('uploads')).toEqual([]);
    expect(await filesUnder('staging')).toEqual([]);
  });

  it('closes a session that had no chunk and no PUT body as the empty blob only', async () => {
    const empty = digest(Buffer.alloc(0));
    await expectRejection(store.completeUpload(store.createUpload(), digest('x')), DigestInvalidError);
    expect(await store.completeUpload(store.createUpload(), empty)).toEqual({ digest: empty.value, size: 0 });
    // The closing PUT without a body claims the session (making its folder) before it knows
    // there are no bytes: the folder made for it must go again.
    expect(await readdir(path.join(root, 'uploads')).catch(() => [])).toEqual([]);
    expect(await filesUnder('staging')).toEqual([]);
  });

  it('refuses a first-and-last chunk that lies about its range or length, storing nothing', async () => {
    const bytes = randomBytes(3000);
    const d = digest(bytes);
    const error = await expectRejection(
      store.completeUpload(store.createUpload(), d, { lastChunk: { source: source(bytes), options: { start: 10, length: bytes.length } } }),
      UploadRangeInvalidError,
    );
    expect(error.detail).toEqual({ offset: 0 });
    await expectRejection(
      store.completeUpload(store.createUpload(), d, { lastChunk: { source: source(bytes), options: { start: 0, length: bytes.length + 1 } } }),
      UploadRangeInvalidError,
    );
    await expectRejection(
      store.completeUpload(store.createUpload(), d, { lastChunk: { source: source(bytes), options: { start: 0, length: bytes.length - 1 } } }),
      UploadRangeInvalidError,
    );
    await expectRejection(store.completeUpload(store.createUpload(), d, { expectedSize: 5, lastChunk: { source: source(bytes), options: {} } }), SizeInvalidError);
    await expectRejection(
      store.completeUpload(store.createUpload(), digest('other'), { lastChunk: { source: source(bytes), options: {} } }),
      DigestInvalidError,
    );
    expect(await store.stat(d)).toBeUndefined();
    expect(await filesUnder('')).toEqual([]);
  });

  // distribution-spec v1.1 "Pushing a blob in chunks": PATCH chunks, then PUT with the digest.
  it('appends chunks and completes them into a readable blob', async () => {
    const chunks = [randomBytes(1000), randomBytes(70_000), randomBytes(1), randomBytes(300_000)];
    const whole = Buffer.concat(chunks);
    const d = digest(whole);
    const id = await store.createUpload();
    let expected = 0;
    for (const chunk of chunks) {
      expected += chunk.length;
      expect(await store.appendUpload(id, source(chunk), { start: expected - chunk.length, length: chunk.length })).toBe(expected);
      expect(await store.uploadSize(id)).toBe(expected);
    }
    expect(await store.completeUpload(id, d, { expectedSize: whole.length })).toEqual({ digest: d.value, size: whole.length });
    expect(Buffer.compare(await readBlob(d), whole)).toBe(0);
    expect(await store.uploadSize(id)).toBe(0);
    expect(await filesUnder('uploads')).toEqual([]);
    expect(await filesUnder('blobs')).toEqual([`blobs/sha256/${d.encoded.slice(0, 2)}/${d.encoded}`]);
  });

  it('appends without start or length', async () => {
    const id = await store.createUpload();
    expect(await store.appendUpload(id, source('abc'))).toBe(3);
    expect(await store.appendUpload(id, source('def', 'gh'))).toBe(8);
    expect(await store.appendUpload(id, source())).toBe(8);
    const d = digest('abcdefgh');
    await store.completeUpload(id, d);
    expect((await readBlob(d)).toString()).toBe('abcdefgh');
  });

  it('completes an empty session as the empty blob', async () => {
    const id = await store.createUpload();
    const d = digest('');
    expect(await store.completeUpload(id, d, { expectedSize: 0 })).toEqual({ digest: d.value, size: 0 });
    expect((await readBlob(d)).length).toBe(0);
  });

  // distribution-spec v1.1 "Pushing a blob in chunks": an out-of-order chunk is 416 and changes nothing.
  it('refuses a chunk whose start is not the current size, leaving the session unchanged', async () => {
    const id = await store.createUpload();
    await store.appendUpload(id, source('first'), { start: 0 });
    for (const start of [0, 4, 6, 100]) {
      const err = await expectRejection(store.appendUpload(id, source('second'), { start }), UploadRangeInvalidError);
      expect(err.detail).toEqual({ offset: 5 });
      expect(await store.uploadSize(id)).toBe(5);
    }
    expect(await store.appendUpload(id, source('second'), { start: 5 })).toBe(11);
    const d = digest('firstsecond');
    await store.completeUpload(id, d);
    expect((await readBlob(d)).toString()).toBe('firstsecond');
  });

  it('cuts a chunk that fails mid-way back off, and the session continues with the right digest', async () => {
    const id = await store.createUpload();
    const good1 = randomBytes(50_000);
    const good2 = randomBytes(50_000);
    await store.appendUpload(id, source(good1));
    const err = await store.appendUpload(id, failingSource(randomBytes(80_000)), { start: good1.length }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(await store.uploadSize(id)).toBe(good1.length);
    expect(await store.appendUpload(id, source(good2), { start: good1.length })).toBe(good1.length + good2.length);
    const d = digest(Buffer.concat([good1, good2]));
    expect(await store.completeUpload(id, d)).toEqual({ digest: d.value, size: good1.length + good2.length });
    expect(Buffer.compare(await readBlob(d), Buffer.concat([good1, good2]))).toBe(0);
  });

  it('cuts back every one of many chunks that fail mid-way', async () => {
    const id = await store.createUpload();
    await store.appendUpload(id, source('kept'));
    for (let i = 0; i < 20; i++) {
      await store.appendUpload(id, failingSource(randomBytes(32 * 1024))).catch(() => undefined);
      expect(await store.uploadSize(id)).toBe(4);
    }
    const d = digest('kept');
    await store.completeUpload(id, d);
    expect((await readBlob(d)).toString()).toBe('kept');
  });

  // distribution-spec v1.1 "Pushing a blob in chunks": Content-Range/Content-Length name the chunk's bytes.
  it('refuses a chunk shorter than its declared length with UploadRangeInvalidError and cuts it off', async () => {
    const id = await store.createUpload();
    await store.appendUpload(id, source('abc'));
    await expectRejection(store.appendUpload(id, source('defg'), { start: 3, length: 10 }), UploadRangeInvalidError);
    expect(await store.uploadSize(id)).toBe(3);
    await store.appendUpload(id, source('xyz'), { start: 3, length: 3 });
    const d = digest('abcxyz');
    await store.completeUpload(id, d);
    expect((await readBlob(d)).toString()).toBe('abcxyz');
  });

  // A failed first chunk must leave the session as it was before it: no data file. The next
  // first chunk then creates the file afresh, which is what makes its name durable.
  it('leaves no data file after a failed first chunk, and takes the next first chunk', async () => {
    const id = store.createUpload();
    await expectRejection(store.appendUpload(id, source('defg'), { start: 0, length: 10 }), UploadRangeInvalidError);
    expect(await filesUnder('uploads')).toEqual([]);
    // Nor an empty folder waiting for the purge.
    expect(await readdir(path.join(root, 'uploads'))).toEqual([]);
    expect(await store.appendUpload(id, source('xyz'), { start: 0, length: 3 })).toBe(3);
    expect(await filesUnder('uploads')).toEqual([`uploads/${id}/data`]);
  });

  it('refuses a chunk longer than its declared length and cuts it off', async () => {
    const id = await store.createUpload();
    await store.appendUpload(id, source('abc'));
    const err = await store.appendUpload(id, source(randomBytes(100_000)), { start: 3, length: 10 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(await store.uploadSize(id)).toBe(3);
    await store.appendUpload(id, source('xyz'), { start: 3, length: 3 });
    const d = digest('abcxyz');
    await store.completeUpload(id, d);
    expect((await readBlob(d)).toString()).toBe('abcxyz');
  });

  // Both length mismatches are the same client error and are answered alike (416).
  it('refuses a chunk longer than its declared length with UploadRangeInvalidError, like a shorter one', async () => {
    const id = await store.createUpload();
    await expectRejection(store.appendUpload(id, source('0123456789ab'), { start: 0, length: 10 }), UploadRangeInvalidError);
  });

  it('serialises appends to one session: the second chunk claiming the same start is refused', async () => {
    const id = await store.createUpload();
    const results = await Promise.allSettled([
      store.appendUpload(id, source(randomBytes(200_000)), { start: 0 }),
      store.appendUpload(id, source(randomBytes(200_000)), { start: 0 }),
    ]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 200_000 });
    expect(results[1]?.status).toBe('rejected');
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(UploadRangeInvalidError);
    expect(await store.uploadSize(id)).toBe(200_000);
  });

  it('serialises appends without start in call order, never interleaving bytes', async () => {
    const id = await store.createUpload();
    const chunks = Array.from({ length: 5 }, (_, i) => Buffer.alloc(100_000, i + 1));
    await Promise.all(chunks.map((chunk) => store.appendUpload(id, source(chunk.subarray(0, 50_000), chunk.subarray(50_000)))));
    const d = digest(Buffer.concat(chunks));
    expect(await store.completeUpload(id, d)).toEqual({ digest: d.value, size: 500_000 });
  });

  // BlobStore: "a process that did not see the earlier chunks (after a restart ...) rebuilds it by re-reading".
  it('continues and completes a session in a new BlobStore over the same directory (restart)', async () => {
    const part1 = randomBytes(123_457);
    const part2 = randomBytes(65_536);
    const id = await store.createUpload();
    await store.appendUpload(id, source(part1));

    const restarted = new BlobStore(new FilesystemDriver(root));
    expect(await restarted.uploadSize(id)).toBe(part1.length);
    expect(await restarted.appendUpload(id, source(part2), { start: part1.length })).toBe(part1.length + part2.length);
    const d = digest(Buffer.concat([part1, part2]));
    expect(await restarted.completeUpload(id, d)).toEqual({ digest: d.value, size: part1.length + part2.length });
    expect(Buffer.compare(await readBlob(d), Buffer.concat([part1, part2]))).toBe(0);
  });

  it('completes in a new BlobStore without further chunks (hash rebuilt from disk)', async () => {
    const bytes = randomBytes(400_000);
    const id = await store.createUpload();
    await store.appendUpload(id, source(bytes.subarray(0, 100_000)));
    await store.appendUpload(id, source(bytes.subarray(100_000)));
    const restarted = new BlobStore(new FilesystemDriver(root));
    const d = digest(bytes);
    expect(await restarted.completeUpload(id, d)).toEqual({ digest: d.value, size: bytes.length });
  });

  // Clients that open a connection per request (skopeo, podman) send the closing PUT to any
  // gateway process, most often not the one that took the chunk.
  it('completes in another BlobStore from the digest the last chunk of a session of 256 KiB or more noted, reading the bytes again only without one that fits the file', async () => {
    const pushed = async (size = 1024 * 1024 + 300_000) => {
      const bytes = randomBytes(size);
      const id = store.createUpload();
      const first = await store.appendChunk(id, source(bytes.subarray(0, 100_000)));
      const last = await store.appendChunk(id, source(bytes.subarray(100_000)));
      return { id, d: digest(bytes), size: bytes.length, first: first.noted, noted: last.noted };
    };
    const closeElsewhere = async ({ id, d, size }: { id: string; d: Digest; size: number }, noted: NotedDigest | undefined) => {
      const driver = new FilesystemDriver(root);
      const reader = vi.spyOn(driver, 'reader');
      expect(await new BlobStore(driver).completeUpload(id, d, { noted })).toEqual({ digest: d.value, size });
      return reader.mock.calls.length;
    };
    const upload = await pushed(1024 * 1024 + 300_000);
    expect(upload.noted).toMatchObject({ size: upload.size, digest: upload.d.value });
    expect(await closeElsewhere(upload, upload.noted)).toBe(0);
    // A session under 256 KiB gets no note: its close reads its few bytes again.
    const small = await pushed(1000);
    expect(small.noted).toBeUndefined();
    expect(await closeElsewhere(small, undefined)).toBe(1);
    // No note, or the note of an earlier chunk.
    const plain = await pushed();
    expect(await closeElsewhere(plain, undefined)).toBe(1);
    const earlier = await pushed();
    expect(await closeElsewhere(earlier, earlier.first)).toBe(1);
    // Chunks are not synced: a note from before a machine crash may vouch for bytes the crash
    // lost, so a note of another boot, however sound, is not trusted. The note names the file
    // and the boot by a hash of both (blob-store.ts, noteFile).
    const fileOf = async (id: string, boot: string) => {
      const info = await stat(path.join(root, paths.uploadData(id)));
      return createHash('sha256').update(`${info.dev}:${info.ino}:${info.birthtimeMs} ${hostname()} ${boot}`).digest('hex').slice(0, 16);
    };
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const thisBoot = await pushed();
    expect(await closeElsewhere(thisBoot, { ...thisBoot.noted!, file: await fileOf(thisBoot.id, boot) })).toBe(0);
    const otherBoot = await pushed();
    expect(await closeElsewhere(otherBoot, { ...otherBoot.noted!, file: await fileOf(otherBoot.id, '00000000-0000-0000-0000-000000000000') })).toBe(1);
  });

  // After another process closed the session, a late chunk may make its folder again with other
  // bytes of the same size: a note of the earlier file must not vouch for them as the blob.
  it('does not trust a note for another file of the same size: the bytes it holds are hashed', async () => {
    const bytes = randomBytes(300_000);
    const other = randomBytes(bytes.length);
    const id = store.createUpload();
    const { noted } = await store.appendChunk(id, source(bytes));
    const data = path.join(root, paths.uploadData(id));
    await writeFile(`${data}.new`, other);
    await rename(`${data}.new`, data);
    const elsewhere = new BlobStore(new FilesystemDriver(root));
    await expectRejection(elsewhere.completeUpload(id, digest(bytes), { noted }), DigestInvalidError);
    expect(await filesUnder('blobs')).toEqual([]);
  });

  // A session's file is removed when the session ends (a wrong digest, a DELETE, the purge); a
  // late chunk may then make it again with other bytes, and a filesystem may give the new file
  // the old one's identity (ext4 hands a freed inode to the next file; without birth times, or
  // with coarse ones, nothing else tells them apart). A digest taken of the old file must not
  // vouch for the new one's bytes.
  describe('a session made again as a file of the same identity', () => {
    /** FilesystemDriver on a filesystem where every file made again takes the identity of the one before it. */
    class IdentityReusingDriver extends FilesystemDriver {
      override async stat(relative: string) {
        const info = await super.stat(relative);
        return info.identity === undefined ? info : { ...info, identity: 'reused' };
      }
      override async writer(relative: string, options: { append: boolean; durable?: boolean }) {
        const writer = await super.writer(relative, options);
        let opened = writer.appendedTo;
        Object.defineProperty(writer, 'appendedTo', {
          get: () => opened && { ...opened, identity: 'reused' },
          set: (value: typeof opened) => {
            opened = value;
          },
        });
        return writer;
      }
    }

    /** PATCH `first` in one process, a wrong digest ends it, a late chunk makes it again with `second`: the note of `first`. */
    const endedAndMadeAgain = async (first: Buffer, second: Buffer) => {
      const patching = new BlobStore(new IdentityReusingDriver(root));
      const id = patching.createUpload();
      const { noted } = await patching.appendChunk(id, source(first));
      await expectRejection(patching.completeUpload(id, digest('not these bytes')), DigestInvalidError);
      await patching.appendChunk(id, source(second));
      return { id, noted };
    };

    it('reads a session under 256 KiB again at its close, trusting no digest kept or noted', async () => {
      const [first, second] = [randomBytes(4096), randomBytes(4096)];
      const { id, noted } = await endedAndMadeAgain(first, second);
      expect(noted).toBeUndefined();
      const closing = new BlobStore(new IdentityReusingDriver(root));
      await expectRejection(closing.completeUpload(id, digest(first), { noted: { size: 4096, digest: digest(first).value, file: 'forged' } }), DigestInvalidError);
      expect(await filesUnder('blobs')).toEqual([]);
    });

    it('asks the owner whether the session is still open before a larger one becomes the blob under a digest taken earlier', async () => {
      const size = 300_000;
      const [first, second] = [randomBytes(size), randomBytes(size)];
      const { id, noted } = await endedAndMadeAgain(first, second);
      expect(noted).toMatchObject({ size, digest: digest(first).value });
      const closing = new BlobStore(new IdentityReusingDriver(root));
      // The owner's record says the session ended with the wrong digest.
      const confirmOpen = vi.fn(async () => {
        throw new BlobUploadUnknownError(`upload ${id} is not open`);
      });
      await expectRejection(closing.completeUpload(id, digest(first), { noted, confirmOpen }), BlobUploadUnknownError);
      expect(confirmOpen).toHaveBeenCalledTimes(1);
      expect(await filesUnder('blobs')).toEqual([]);
      // Nor in memory: the process that took the late chunk keeps a hash of the file it took it into.
      const keeping = new BlobStore(new IdentityReusingDriver(root));
      const again = keeping.createUpload();
      await keeping.appendChunk(again, source(first));
      await new BlobStore(new IdentityReusingDriver(root)).completeUpload(again, digest('not these bytes')).catch(() => undefined);
      await new BlobStore(new IdentityReusingDriver(root)).appendChunk(again, source(second));
      await expectRejection(keeping.completeUpload(again, digest(first), { confirmOpen }), BlobUploadUnknownError);
      expect(confirmOpen).toHaveBeenCalledTimes(2);
      expect(await filesUnder('blobs')).toEqual([]);
    });

    it("records a wrong digest's end of the session before its bytes are removed", async () => {
      const bytes = randomBytes(1000);
      const id = store.createUpload();
      await store.appendChunk(id, source(bytes));
      const filesAtEnd: string[][] = [];
      const recordEnd = vi.fn(async () => {
        filesAtEnd.push(await readdir(path.join(root, 'uploads', id)));
      });
      await expectRejection(store.completeUpload(id, digest('not these bytes'), { recordEnd }), DigestInvalidError);
      expect(filesAtEnd).toHaveLength(1);
      expect(filesAtEnd[0]).toEqual([expect.stringMatching(/^data\./)]);
      expect(await readdir(path.join(root, 'uploads'))).toEqual([]);
    });
  });

  it('closes a chunked session by removing its few files by name, leaving no folder, never listing it for a recursive delete', async () => {
    // skopeo, podman and docker close every push this way (PATCH, then an empty PUT): the close
    // is on the path of every blob they push.
    for (const size of [1000, 1024 * 1024 + 1]) {
      const driver = new FilesystemDriver(root);
      const sessions = new BlobStore(driver);
      const bytes = randomBytes(size);
      const id = sessions.createUpload();
      await sessions.appendUpload(id, source(bytes));
      const deleted = vi.spyOn(driver, 'delete');
      expect(await sessions.completeUpload(id, digest(bytes))).toEqual({ digest: digest(bytes).value, size });
      expect(deleted.mock.calls.map(([relative]) => relative)).not.toContain(paths.uploadDir(id));
      expect(await readdir(path.join(root, 'uploads'))).toEqual([]);
      expect(Buffer.compare(await readBlob(digest(bytes)), bytes)).toBe(0);
    }
  });

  it('refuses the wrong digest in a new BlobStore after a restart', async () => {
    const id = await store.createUpload();
    await store.appendUpload(id, source('some bytes'));
    const restarted = new BlobStore(new FilesystemDriver(root));
    await expectRejection(restarted.completeUpload(id, digest('other bytes')), DigestInvalidError);
    expect(await filesUnder('blobs')).toEqual([]);
  });

  // Two gateways of a region sharing one store: each sees the other's chunks.
  it('keeps the digest right when two BlobStores alternate chunks of one session', async () => {
    const other = new BlobStore(new FilesystemDriver(root));
    const chunks = [randomBytes(10_000), randomBytes(20_000), randomBytes(30_000), randomBytes(5)];
    const id = await store.createUpload();
    let size = 0;
    for (const [i, chunk] of chunks.entries()) {
      const owner = i % 2 === 0 ? store : other;
      size = await owner.appendUpload(id, source(chunk), { start: size });
    }
    const d = digest(Buffer.concat(chunks));
    expect(await store.completeUpload(id, d)).toEqual({ digest: d.value, size: 60_005 });
  });

  it('keeps digests right when the in-memory hash cache evicts sessions', async () => {
    const small = new BlobStore(new FilesystemDriver(root), { maxRunningHashes: 1 });
    const ids = [await small.createUpload(), await small.createUpload(), await small.createUpload()];
    const contents = ids.map(() => [] as Buffer[]);
    for (let round = 0; round < 3; round++) {
      for (const [i, id] of ids.entries()) {
        const chunk = randomBytes(1000 + round * 10 + i);
        contents[i]!.push(chunk);
        await small.appendUpload(id, source(chunk));
      }
    }
    for (const [i, id] of ids.entries()) {
      const d = digest(Buffer.concat(contents[i]!));
      expect((await small.completeUpload(id, d)).digest).toBe(d.value);
    }
  });

  // distribution-spec v1.1 "Pushing blobs": a digest mismatch is DIGEST_INVALID; the session is discarded.
  it('discards the session on a wrong digest and stores nothing', async () => {
    const id = await store.createUpload();
    await store.appendUpload(id, source('actual content'));
    const wrong = digest('claimed content');
    await expectRejection(store.completeUpload(id, wrong), DigestInvalidError);
    // The bytes are gone: the session can never become the blob they were.
    expect(await store.uploadSize(id)).toBe(0);
    expect(await store.stat(wrong)).toBeUndefined();
    expect(await store.stat(digest('actual content'))).toBeUndefined();
    expect(await filesUnder('blobs')).toEqual([]);
    expect(await filesUnder('uploads')).toEqual([]);
  });

  it('refuses a completion whose size does not match and stores nothing', async () => {
    const id = await store.createUpload();
    await store.appendUpload(id, source('123456'));
    await expectRejection(store.completeUpload(id, digest("123456"), { expectedSize: 7 }), SizeInvalidError);
    expect(await store.stat(digest('123456'))).toBeUndefined();
    expect(await filesUnder('blobs')).toEqual([]);
  });

  // image-spec descriptor.md "SHA-512".
  it('completes with a sha512 digest and refuses a wrong sha512 digest', async () => {
    const bytes = randomBytes(150_000);
    const id = await store.createUpload();
    await store.appendUpload(id, source(bytes.subarray(0, 70_000)));
    await store.appendUpload(id, source(bytes.subarray(70_000)));
    const d = digest(bytes, 'sha512');
    expect(await store.completeUpload(id, d)).toEqual({ digest: d.value, size: bytes.length });
    expect(Buffer.compare(await readBlob(d), bytes)).toBe(0);
    expect(await filesUnder('blobs')).toEqual([`blobs/sha512/${d.encoded.slice(0, 2)}/${d.encoded}`]);

    const id2 = await store.createUpload();
    await store.appendUpload(id2, source(bytes));
    await expectRejection(store.completeUpload(id2, digest(randomBytes(4), 'sha512')), DigestInvalidError);
    expect(await store.uploadSize(id2)).toBe(0);
  });

  it('refuses a digest whose algorithm label does not match its encoding', async () => {
    const id = await store.createUpload();
    await store.appendUpload(id, source('abc'));
    const sha512 = digest('abc', 'sha512');
    const mislabelled = parseDigest(`sha256:${sha512.encoded.slice(0, 64)}`);
    await expectRejection(store.completeUpload(id, mislabelled), DigestInvalidError);
  });

  // distribution-spec v1.1 "Canceling an upload": DELETE removes the session.
  it('cancels a session: its files go, and only its', async () => {
    const id = store.createUpload();
    const kept = store.createUpload();
    await store.appendUpload(id, source('partial'));
    await store.appendUpload(kept, source('kept'));
    await store.cancelUpload(id);
    expect(await store.uploadSize(id)).toBe(0);
    expect(await filesUnder('uploads')).toEqual([`uploads/${kept}/data`]);
    // Cancelling a session that never had a chunk touches nothing.
    await store.cancelUpload(store.createUpload());
    expect(await filesUnder('uploads')).toEqual([`uploads/${kept}/data`]);
  });

  // A DELETE must not hang on a slow client's chunk: the caller has already closed the session
  // in its metadata, and the writer removes the files when it finds that out.
  it('leaves a session that a chunk is being written to, without waiting, and removes it once idle', async () => {
    const id = store.createUpload();
    await store.appendUpload(id, source('first'));
    const slow = new PassThrough();
    const writing = store.appendUpload(id, slow);
    slow.write('more');
    await waitForChunkUnderWay(id);
    expect(await store.cancelUpload(id)).toBe(false);
    // Another process of the region sees the session held (data.<holder>), and leaves it too.
    const other = new BlobStore(new FilesystemDriver(root));
    expect(await other.cancelUpload(id)).toBe(false);
    expect(await filesUnder('uploads')).toEqual([expect.stringMatching(new RegExp(`^uploads/${id}/data\\.`))]);
    slow.end();
    expect(await writing).toBe(9);
    expect(await store.cancelUpload(id)).toBe(true);
    expect(await filesUnder('uploads')).toEqual([]);
  });

  // A first chunk holds the session by making its folder, before its file exists; a cancel
  // from another process must not pull the folder from under it.
  it('leaves a session another process holds, even before its first bytes', async () => {
    const id = store.createUpload();
    const folder = path.join(root, 'uploads', id);
    await mkdir(folder, { recursive: true });
    expect(await store.cancelUpload(id)).toBe(false);
    expect(await readdir(path.join(root, 'uploads'))).toEqual([id]);
    await rm(folder, { recursive: true });
    // And once its file is there, under the holder's name.
    const held = await heldBy(id, 'another-process');
    expect(await store.cancelUpload(id)).toBe(false);
    expect(await filesUnder('uploads')).toEqual([`uploads/${id}/data.another-process`]);
    await rm(held);
    await rm(folder, { recursive: true });
    expect(await store.cancelUpload(id)).toBe(true);
    expect(await filesUnder('uploads')).toEqual([]);
  });

  // Whether a well-formed id names an open session is the metadata's to say (see the gateway's
  // UploadService); to the store it is a session with no bytes.
  it('holds no bytes for a well-formed id it never saw, and writes nothing for it', async () => {
    const id = '00000000-0000-0000-0000-000000000000';
    expect(await store.uploadSize(id)).toBe(0);
    await store.cancelUpload(id);
    expect(await filesUnder('')).toEqual([]);
  });

  // distribution-spec v1.1 "Pushing blobs": an unknown session is BLOB_UPLOAD_UNKNOWN (404).
  it.each([
    ['a malformed id', 'not-an-upload-id'],
    ['a path trick', '../../../../etc/passwd'],
    ['an encoded path trick', '..%2F..%2Fblobs'],
    ['the empty string', ''],
  ])('answers %s with BlobUploadUnknownError everywhere', async (_label, id) => {
    await expectRejection(store.uploadSize(id), BlobUploadUnknownError);
    await expectRejection(store.appendUpload(id, source('x')), BlobUploadUnknownError);
    await expectRejection(store.completeUpload(id, digest('x')), BlobUploadUnknownError);
    await expectRejection(store.cancelUpload(id), BlobUploadUnknownError);
    expect(await filesUnder('uploads')).toEqual([]);
  });

  it('lets two sessions of the same content complete at the same time, both succeeding with one intact blob', async () => {
    const bytes = randomBytes(600_000);
    const d = digest(bytes);
    const ids = await Promise.all([store.createUpload(), store.createUpload(), store.createUpload()]);
    await Promise.all(ids.map((id) => store.appendUpload(id, source(bytes.subarray(0, 300_000), bytes.subarray(300_000)))));
    const results = await Promise.all(ids.map((id) => store.completeUpload(id, d, { expectedSize: bytes.length })));
    for (const result of results) expect(result).toEqual({ digest: d.value, size: bytes.length });
    expect(sha256Hex(await readBlob(d))).toBe(d.encoded);
    expect(await filesUnder('uploads')).toEqual([]);
    expect(await filesUnder('blobs')).toEqual([`blobs/sha256/${d.encoded.slice(0, 2)}/${d.encoded}`]);
  });

  it('lets an upload complete onto a blob already held, leaving it intact', async () => {
    const bytes = randomBytes(10_000);
    const d = digest(bytes);
    await store.put(d, source(bytes));
    const reader = await store.read(d);
    const id = await store.createUpload();
    await store.appendUpload(id, source(bytes));
    expect(await store.completeUpload(id, d)).toEqual({ digest: d.value, size: bytes.length });
    expect(sha256Hex(await readAll(reader))).toBe(d.encoded);
    expect(sha256Hex(await readBlob(d))).toBe(d.encoded);
  });
});

describe('purgeStale (Distribution storage/purgeuploads.go)', () => {
  const NOW = Date.UTC(2024, 5, 1, 12, 0, 0);
  const HOUR = 60 * 60 * 1000;

  async function setMtime(relative: string, at: number): Promise<void> {
    const when = new Date(at);
    await utimes(path.join(root, relative), when, when);
  }

  it('removes sessions idle longer than the limit and keeps fresh ones', async () => {
    const stale = await store.createUpload();
    const fresh = await store.createUpload();
    await store.appendUpload(stale, source('old'));
    await store.appendUpload(fresh, source('new'));
    await setMtime(`uploads/${stale}/data`, NOW - 3 * HOUR);
    await setMtime(`uploads/${fresh}/data`, NOW - 10 * 60 * 1000);

    expect(await store.purgeStale(HOUR, NOW)).toEqual({ sessions: [stale], stagingFiles: 0 });
    expect(await store.uploadSize(stale)).toBe(0);
    expect(await store.uploadSize(fresh)).toBe(3);
    expect(await filesUnder('uploads')).toEqual([`uploads/${fresh}/data`]);
    const d = digest('newer');
    await store.appendUpload(fresh, source('er'), { start: 3 });
    expect((await store.completeUpload(fresh, d)).size).toBe(5);
  });

  it('judges idleness by the time given, not the clock', async () => {
    const id = store.createUpload();
    await store.appendUpload(id, source('abc'));
    await setMtime(`uploads/${id}/data`, NOW);
    expect(await store.purgeStale(HOUR, NOW + HOUR / 2)).toEqual({ sessions: [], stagingFiles: 0 });
    expect(await store.uploadSize(id)).toBe(3);
    expect(await store.purgeStale(HOUR, NOW + 2 * HOUR)).toEqual({ sessions: [id], stagingFiles: 0 });
    expect(await store.uploadSize(id)).toBe(0);
    expect(await filesUnder('uploads')).toEqual([]);
  });

  it('removes stale staging files left by a crash and keeps fresh ones', async () => {
    await mkdir(path.join(root, 'staging'), { recursive: true });
    const oldStaging = 'staging/11111111-1111-1111-1111-111111111111';
    const newStaging = 'staging/22222222-2222-2222-2222-222222222222';
    await writeFile(path.join(root, oldStaging), 'half a blob');
    await writeFile(path.join(root, newStaging), 'a blob being written');
    await setMtime(oldStaging, NOW - 5 * HOUR);
    await setMtime(newStaging, NOW - 60 * 1000);

    expect(await store.purgeStale(HOUR, NOW)).toEqual({ sessions: [], stagingFiles: 1 });
    expect(await filesUnder('staging')).toEqual([newStaging]);
  });

  // A folder without data: a first chunk being written, or a crash during one. Its age decides.
  it('removes a stale session folder whose data file is missing, and keeps a fresh one', async () => {
    const old = '33333333-3333-3333-3333-333333333333';
    const fresh = '44444444-4444-4444-4444-444444444444';
    await mkdir(path.join(root, 'uploads', old), { recursive: true });
    await mkdir(path.join(root, 'uploads', fresh), { recursive: true });
    await setMtime(`uploads/${old}`, NOW - 2 * HOUR);
    await setMtime(`uploads/${fresh}`, NOW - 60 * 1000);
    expect(await store.purgeStale(HOUR, NOW)).toEqual({ sessions: [old], stagingFiles: 0 });
    expect(await readdir(path.join(root, 'uploads'))).toEqual([fresh]);
  });

  it('leaves entries that are not upload ids, and blobs, alone', async () => {
    const d = digest('a blob');
    await store.put(d, source('a blob'));
    await setMtime(`blobs/sha256/${d.encoded.slice(0, 2)}/${d.encoded}`, NOW - 100 * HOUR);
    await mkdir(path.join(root, 'uploads', 'not-an-id'), { recursive: true });
    await writeFile(path.join(root, 'uploads', 'not-an-id', 'data'), 'x');
    await setMtime('uploads/not-an-id/data', NOW - 100 * HOUR);

    expect(await store.purgeStale(HOUR, NOW)).toEqual({ sessions: [], stagingFiles: 0 });
    expect(await filesUnder('uploads')).toEqual(['uploads/not-an-id/data']);
    expect((await readBlob(d)).toString()).toBe('a blob');
  });

  it('removes nothing from an empty store', async () => {
    expect(await store.purgeStale(HOUR, NOW)).toEqual({ sessions: [], stagingFiles: 0 });
  });
});

describe('one writer per session across processes (uploads/<id>/data.<holder>)', () => {
  // Two BlobStores over one directory stand for two gateway processes of a region. A name this
  // store would not make (`data.another-process`) is a holder it can judge by age only.
  it('refuses a chunk while another process holds the session, and takes it once released', async () => {
    const id = await store.createUpload();
    const held = await heldBy(id, 'another-process', 'abc'); // another process is writing this session
    const other = new BlobStore(new FilesystemDriver(root));
    await expect(other.appendUpload(id, source('def'))).rejects.toBeInstanceOf(BlobUploadInvalidError);
    expect(await readFile(held, 'utf8')).toBe('abc');

    await rename(held, path.join(root, 'uploads', id, 'data'));
    expect(await other.appendUpload(id, source('def'))).toBe(6);
    // Given back under its own name once the chunk is written.
    expect(await filesUnder('uploads')).toEqual([`uploads/${id}/data`]);
  });

  it('waits for a session released a moment later (a writer finishing after its client left)', async () => {
    const id = await store.createUpload();
    const held = await heldBy(id, 'another-process', 'abc');
    setTimeout(() => void rename(held, path.join(root, 'uploads', id, 'data')), 200);
    const other = new BlobStore(new FilesystemDriver(root));
    expect(await other.appendUpload(id, source('late'))).toBe(7);
  });

  it('takes over a session held by a crashed writer once its file is older than the stale limit', async () => {
    const id = await store.createUpload();
    const held = await heldBy(id, 'another-process', 'xy');
    const old = (Date.now() - 2 * 3600_000) / 1000;
    await utimes(held, old, old);
    const other = new BlobStore(new FilesystemDriver(root), { staleLockMs: 3600_000 });
    expect(await other.appendUpload(id, source('z'))).toBe(3);
    const blob = await other.completeUpload(id, digest('xyz'));
    expect(blob.size).toBe(3);
    expect(await filesUnder('uploads')).toEqual([]);
  });

  describe('a session whose holder is gone is taken over at once, not after the stale limit', () => {
    /** The parts of the name this process gives a session it holds, read off a real one. */
    async function ownLock(): Promise<Record<'claimedAt' | 'pid' | 'token' | 'host' | 'scope', string>> {
      const id = await store.createUpload();
      const held = new PassThrough();
      const writing = store.appendUpload(id, held);
      const name = await waitForChunkUnderWay(id);
      held.end('x');
      await writing;
      const [claimedAt, pid, token, host, scope] = name.slice('data.'.length).split('.') as [string, string, string, string, string];
      return { claimedAt, pid, token, host, scope };
    }
    /** A session held by `owner`: its pid, start token, and host or scope ("another" for one of another host, boot or pid namespace). */
    async function lockHeldBy(owner: { pid: unknown; token: string; host?: 'another'; scope?: 'another' }): Promise<string> {
      const own = await ownLock();
      const other = (hash: string) => (hash.startsWith('f') ? '0' : 'f').repeat(16);
      const id = await store.createUpload();
      const host = owner.host ? other(own.host) : own.host;
      const scope = owner.scope ? other(own.scope) : own.scope;
      await heldBy(id, `${own.claimedAt}.${String(owner.pid)}.${owner.token}.${host}.${scope}`, 'ab');
      return id;
    }
    /** A process's start time as /proc/<pid>/stat gives it (field 22). */
    function startTimeOf(pid: number): string | undefined {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    }
    /** The id of a process that has run and exited. */
    async function deadPid(): Promise<number> {
      const child = spawn(process.execPath, ['-e', '']);
      await new Promise((resolve) => child.once('exit', resolve));
      return child.pid!;
    }

    it('a holder on this host that no longer runs (a writer killed mid-chunk)', async () => {
      const id = await lockHeldBy({ pid: await deadPid(), token: 'dead' });
      const [held] = await filesUnder(`uploads/${id}`);
      const { ino } = await stat(path.join(root, held!));
      const other = new BlobStore(new FilesystemDriver(root), { staleLockMs: 3600_000 });
      expect(await other.appendUpload(id, source('xyz'))).toBe(5);
      expect(await filesUnder(`uploads/${id}`)).toEqual([`uploads/${id}/data`]);
      // Copied even so: the file may have come to that holder from one judged gone by its
      // silence alone, whose takeover died before its copy, and which may still write.
      expect((await stat(path.join(root, 'uploads', id, 'data'))).ino).not.toBe(ino);
    });

    it("a late write by a holder judged gone by its silence, whose file a holder now dead took before its copy, never reaches the blob", async () => {
      const id = await lockHeldBy({ pid: await deadPid(), token: 'dead' });
      const [held] = await filesUnder(`uploads/${id}`);
      // The silent holder before the dead one still has the file open: the dead one had renamed
      // it to its own name and died before copying it.
      const silent = await open(path.join(root, held!), 'a');
      const other = new BlobStore(new FilesystemDriver(root), { staleLockMs: 3600_000 });
      expect(await other.appendUpload(id, source('xyz'))).toBe(5);
      const blob = await other.completeUpload(id, digest('abxyz'));
      await silent.write('LATE');
      await silent.close();
      const stored = await readFile(path.join(root, 'blobs', 'sha256', digest('abxyz').encoded.slice(0, 2), digest('abxyz').encoded));
      expect(blob.size).toBe(5);
      expect(stored.toString()).toBe('abxyz');
    });

    it('a pid that now names another process, started after the holder (pid reuse)', async () => {
      const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
      try {
        await vi.waitFor(() => expect(startTimeOf(sleeper.pid!)).toBeDefined());
        const id = await lockHeldBy({ pid: sleeper.pid, token: '1' });
        expect(await store.appendUpload(id, source('xyz'))).toBe(5);
      } finally {
        sleeper.kill();
      }
    });

    // A worker thread, or a second copy of this package, is the same process: its locks are live.
    it('a second copy of the store module in this process does not take the first one\'s lock for a dead one', async () => {
      vi.resetModules();
      const { BlobStore: SecondCopy } = await import('./blob-store.js');
      expect(SecondCopy).not.toBe(BlobStore);
      const id = await store.createUpload();
      const held = new PassThrough();
      const writing = store.appendUpload(id, held);
      held.write('held');
      await waitForChunkUnderWay(id);
      const other = new SecondCopy(new FilesystemDriver(root));
      // Its error classes are second copies too: compare by kind.
      await expect(other.appendUpload(id, source('intruder'))).rejects.toMatchObject({ kind: 'BlobUploadInvalid' });
      held.end('-end');
      expect(await writing).toBe(8);
    });

    it('an earlier run of this very process id (a restarted process that got the same pid)', async () => {
      const id = await lockHeldBy({ pid: process.pid, token: '0' });
      expect(await store.appendUpload(id, source('xyz'))).toBe(5);
    });

    it('but a holder that still runs, or one whose pid means another process (another host, boot or pid namespace), keeps its lock', async () => {
      const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
      try {
        await vi.waitFor(() => expect(startTimeOf(sleeper.pid!)).toBeDefined());
        for (const owner of [
          { pid: sleeper.pid, token: startTimeOf(sleeper.pid!)! },
          { host: 'another' as const, pid: await deadPid(), token: 'e1' },
          // Containers sharing a host name: the pid belongs to another namespace.
          { scope: 'another' as const, pid: await deadPid(), token: 'a1' },
          { scope: 'another' as const, pid: process.pid, token: 'a2' },
        ]) {
          const id = await lockHeldBy(owner);
          await expect(store.appendUpload(id, source('xyz'))).rejects.toBeInstanceOf(BlobUploadInvalidError);
          expect(await store.uploadSize(id)).toBe(2);
        }
      } finally {
        sleeper.kill();
      }
    });

    // Two processes judging one dead holder at once: only one takes its file over, and the
    // slower one must not take the session from the faster one. A driver whose takeovers are
    // slow makes the overlap certain.
    it('two processes taking over the same dead holder at once never both write', async () => {
      class SlowTakeover extends FilesystemDriver {
        override async move(from: string, to: string, options?: { flush?: boolean; durable?: boolean }): Promise<void> {
          if (/\/data\.[^/]+$/.test(from) && /\/data\.[^/]+$/.test(to)) await new Promise((resolve) => setTimeout(resolve, 150));
          return super.move(from, to, options);
        }
      }
      const id = await lockHeldBy({ pid: await deadPid(), token: 'dead' });
      const slow = new BlobStore(new SlowTakeover(root));
      const fast = new BlobStore(new FilesystemDriver(root));
      const slowly = (text: string) => {
        const stream = new PassThrough();
        setTimeout(() => stream.end(text), 400);
        return stream;
      };
      const results = await Promise.allSettled([slow.appendUpload(id, slowly('AAAA')), fast.appendUpload(id, slowly('BBBB'))]);
      const written = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(BlobUploadInvalidError);
      const data = await readFile(path.join(root, 'uploads', id, 'data'), 'utf8');
      // One writer at a time: each success saw the session as the other left it.
      expect(['abAAAA', 'abBBBB', 'abAAAABBBB', 'abBBBBAAAA']).toContain(data);
      expect(written.sort()).toEqual(data.length === 10 ? [10, 6] : [6]);
      const closed = await new BlobStore(new FilesystemDriver(root)).completeUpload(id, digest(data));
      expect(closed.size).toBe(data.length);
    });

    // While another process holds the session, or is between making its folder and its file
    // (a first chunk), a waiter waits: a pause between looks and the usual deadline, not a
    // busy loop.
    it('waits, without spinning, while another process holds the session or is just closing it', async () => {
      let looks = 0;
      class CountingDriver extends FilesystemDriver {
        override async list(relative: string): Promise<string[]> {
          looks++;
          return super.list(relative);
        }
      }
      const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
      try {
        await vi.waitFor(() => expect(startTimeOf(sleeper.pid!)).toBeDefined());
        const held = await lockHeldBy({ pid: sleeper.pid, token: startTimeOf(sleeper.pid!)! });
        // A close between moving the bytes into place and removing the digest note left beside them.
        const closing = store.createUpload();
        await mkdir(path.join(root, 'uploads', closing), { recursive: true });
        await writeFile(path.join(root, 'uploads', closing, 'sha256'), '');
        for (const id of [held, closing]) {
          looks = 0;
          const waiting = new BlobStore(new CountingDriver(root));
          await expect(waiting.appendUpload(id, source('xyz'))).rejects.toBeInstanceOf(BlobUploadInvalidError);
          // About one look per 20 ms pause over the 2 s wait; a busy loop makes tens of thousands.
          expect(looks).toBeGreaterThan(0);
          expect(looks).toBeLessThan(500);
        }
      } finally {
        sleeper.kill();
      }
    });

    // The holder's heartbeat: a lock older than the stale limit, but still touched, is live.
    it('a holder whose chunk outlasts the stale limit keeps its lock while it works', async () => {
      const quick = new BlobStore(new FilesystemDriver(root), { staleLockMs: 300 });
      const id = await quick.createUpload();
      const long = new PassThrough();
      const writing = quick.appendUpload(id, long);
      long.write('start');
      await new Promise((resolve) => setTimeout(resolve, 900));
      const other = new BlobStore(new FilesystemDriver(root), { staleLockMs: 300 });
      await expect(other.appendUpload(id, source('intruder'))).rejects.toBeInstanceOf(BlobUploadInvalidError);
      long.end('-end');
      expect(await writing).toBe(9);
    });
  });

  // A rename keeps the file's time: a session idle for an hour, claimed a moment ago, must not
  // look like a holder whose heartbeat stopped an hour ago before its first heartbeat.
  it('a session idle for longer than the stale limit is not taken from a request that has just claimed it', async () => {
    const quick = new BlobStore(new FilesystemDriver(root), { staleLockMs: 60_000 });
    const id = quick.createUpload();
    await quick.appendUpload(id, source('idle'));
    const old = (Date.now() - 3600_000) / 1000;
    await utimes(path.join(root, 'uploads', id, 'data'), old, old);
    const slow = new PassThrough();
    const writing = quick.appendUpload(id, slow);
    await waitForChunkUnderWay(id);
    const other = new BlobStore(new FilesystemDriver(root), { staleLockMs: 60_000 });
    await expect(other.appendUpload(id, source('intruder'))).rejects.toBeInstanceOf(BlobUploadInvalidError);
    slow.end('-more');
    expect(await writing).toBe(9);
  });

  // A session left holding no bytes (no data, no claimed file) by a crash between making its
  // folder and its first file: waited for while fresh (see the test above), taken once stale.
  it('claims a session folder left empty for longer than the stale limit', async () => {
    const id = store.createUpload();
    const folder = path.join(root, 'uploads', id);
    await mkdir(folder, { recursive: true });
    const old = (Date.now() - 2 * 60_000) / 1000;
    await utimes(folder, old, old);
    expect(await store.appendUpload(id, source('first'))).toBe(5);
    expect(await filesUnder('uploads')).toEqual([`uploads/${id}/data`]);
  });

  // A PUT whose body starts past byte 0 follows chunks: while another process holds them (under
  // its own name) it waits for them, rather than taking the session for one without bytes.
  it('a closing PUT with a body that follows chunks waits for the chunk another process holds', async () => {
    const id = store.createUpload();
    const held = await heldBy(id, 'another-process', 'abc');
    setTimeout(() => void rename(held, path.join(root, 'uploads', id, 'data')), 200);
    const other = new BlobStore(new FilesystemDriver(root));
    const blob = await other.completeUpload(id, digest('abcdef'), { lastChunk: { source: source('def'), options: { start: 3, length: 3 } } });
    expect(blob).toEqual({ digest: digest('abcdef').value, size: 6 });
    expect(await filesUnder('uploads')).toEqual([]);
  });

  // What a skopeo-style push costs the file system: the chunk's own file and the session's
  // folder, nothing made and removed only to hold the session (a small file costs 110-190 us
  // of CPU to make and remove).
  it('a PATCH and the PUT closing it make no file but the chunk\'s, and leave none', async () => {
    const made: string[] = [];
    const driver = new FilesystemDriver(root);
    const counting = new BlobStore(
      new Proxy(driver, {
        get(target, property) {
          const value = Reflect.get(target, property) as unknown;
          if (typeof value !== 'function') return value;
          if (property === 'createExclusive' || property === 'putContent' || property === 'writer') {
            return (relative: string, ...rest: unknown[]) => (made.push(relative), (value as (...args: unknown[]) => unknown).call(target, relative, ...rest));
          }
          return value.bind(target);
        },
      }),
    );
    const bytes = randomBytes(64 * 1024);
    const id = counting.createUpload();
    expect(await counting.appendUpload(id, source(bytes))).toBe(bytes.length);
    // The chunk's file is made empty in its folder under staging/, renamed into place as the
    // session's folder (see placeSession), and written there.
    expect(made).toEqual([expect.stringMatching(/^staging\/[^/]+\/data\./), expect.stringMatching(new RegExp(`^uploads/${id}/data\\.`))]);
    made.length = 0;
    // The closing PUT, in another process of the region (its own hash rebuilt from disk): it
    // writes no note, nor reads one.
    const other = new BlobStore(
      new Proxy(driver, {
        get: (target, property) =>
          ['createExclusive', 'putContent', 'writer', 'getContent'].includes(String(property))
            ? () => made.push(String(property))
            : (Reflect.get(target, property) as (...args: unknown[]) => unknown).bind(target),
      }),
    );
    expect(await other.completeUpload(id, digest(bytes))).toEqual({ digest: digest(bytes).value, size: bytes.length });
    expect(made).toEqual([]);
    expect(await readdir(path.join(root, 'uploads'))).toEqual([]);
  });

  // The first chunk of a session goes into the empty file placeSession made: its size is known,
  // and the writer tells which file it wrote, so no look at it by name is needed, before or after.
  it('takes a session\'s first chunk without looking at its file by name', async () => {
    const driver = new FilesystemDriver(root);
    const looks = vi.spyOn(driver, 'stat');
    const sessions = new BlobStore(driver);
    const bytes = randomBytes(1024 * 1024 + 5);
    const id = sessions.createUpload();
    const { size, noted } = await sessions.appendChunk(id, source(bytes));
    expect(size).toBe(bytes.length);
    expect(looks.mock.calls).toEqual([]);
    // What it noted is of the very file that holds the bytes: a close elsewhere hashes nothing.
    const elsewhere = new FilesystemDriver(root);
    const reader = vi.spyOn(elsewhere, 'reader');
    expect(await new BlobStore(elsewhere).completeUpload(id, digest(bytes), { noted })).toEqual({ digest: digest(bytes).value, size: bytes.length });
    expect(reader.mock.calls).toEqual([]);
  });

  // The in-process queue is bounded like the cross-process lock: a second request on a session
  // whose chunk stalls is refused, not left hanging for as long as the stall lasts.
  it('refuses a second chunk while the first one stalls in this same process, after the usual wait', async () => {
    const id = await store.createUpload();
    const stalled = new PassThrough();
    const first = store.appendUpload(id, stalled);
    stalled.write('held');
    await waitForChunkUnderWay(id);
    await expect(store.appendUpload(id, source('second'))).rejects.toBeInstanceOf(BlobUploadInvalidError);
    stalled.end();
    expect(await first).toBe(4);
    expect(await store.appendUpload(id, source('-then'))).toBe(9);
  });

  it('a session grown by another process is re-hashed from disk, never trusted from a stale hash', async () => {
    const a = store;
    const b = new BlobStore(new FilesystemDriver(root));
    const id = await a.createUpload();
    await a.appendUpload(id, source('first-'));
    await b.appendUpload(id, source('second'));
    // a's in-memory hash saw 6 bytes; the session has 12, so a must rebuild before closing.
    const closed = await a.completeUpload(id, digest('first-second'));
    expect(closed.size).toBe(12);
  });

  // Another process closed the session, and a late chunk made its folder again with other bytes
  // of the same size: a hash kept from before must not vouch for them, or they would replace the
  // stored blob under its digest.
  it('a hash kept for a session is not trusted for other bytes of the same size in its place', async () => {
    const a = store;
    const b = new BlobStore(new FilesystemDriver(root));
    const id = await a.createUpload();
    await b.appendUpload(id, source('genuine'));
    expect(await a.completeUpload(id, digest('genuine'))).toEqual({ digest: digest('genuine').value, size: 7 });
    await a.appendUpload(id, source('forgery'));
    await expectRejection(b.completeUpload(id, digest('genuine')), DigestInvalidError);
    expect((await readBlob(digest('genuine'))).toString()).toBe('genuine');
  });
});

// What the registry's judgement of a blob rests on: a blob is held only if its bytes are in the
// store now, whatever was true when it was pushed (the data directory deleted, a file cut short).
describe('confirm and checkWritable: what the store holds now, and whether it can be written', () => {
  function blobFile(d: Digest): string {
    return path.join(root, paths.blob(d));
  }

  it('holds a stored blob; not one whose file is missing, cut short, or a folder, and says which and where', async () => {
    const bytes = Buffer.from('held for now');
    const d = digest(bytes);
    await store.put(d, source(bytes));
    expect(await store.confirm(d, bytes.length)).toEqual({ held: true });
    expect(await store.confirm(d)).toEqual({ held: true });
    expect(await store.confirm(d, bytes.length + 1)).toEqual({ held: false, path: blobFile(d), problem: `its file holds ${bytes.length} bytes, not ${bytes.length + 1}` });
    await truncate(blobFile(d), 4);
    expect(await store.confirm(d, bytes.length)).toMatchObject({ held: false, path: blobFile(d), problem: expect.stringContaining('holds 4 bytes') });
    await rm(blobFile(d));
    expect(await store.confirm(d, bytes.length)).toEqual({ held: false, path: blobFile(d), problem: 'its file is missing' });
    await mkdir(blobFile(d));
    expect(await store.confirm(d)).toMatchObject({ held: false, problem: 'a folder is in its place' });
  });

  it('looks every time, nothing remembered, but calls for one blob while a look is under way share it', async () => {
    const driver = new FilesystemDriver(root);
    let stats = 0;
    const counting = new BlobStore(
      new Proxy(driver, {
        get(target, property) {
          const value = Reflect.get(target, property) as unknown;
          if (property === 'stat') return (relative: string) => (stats++, target.stat(relative));
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    );
    const bytes = Buffer.from('looked at');
    const d = digest(bytes);
    await counting.put(d, source(bytes), bytes.length);
    stats = 0;
    expect(await Promise.all([counting.confirm(d, bytes.length), counting.confirm(d, bytes.length), counting.confirm(d, bytes.length)])).toEqual([
      { held: true },
      { held: true },
      { held: true },
    ]);
    expect(stats).toBe(1);
    // A look that has answered is not reused: the bytes gone since are seen at once.
    await rm(blobFile(d));
    expect(await counting.confirm(d, bytes.length)).toMatchObject({ held: false, problem: 'its file is missing' });
    expect(stats).toBe(2);
  });

  it('holds nothing once the whole store is gone, without throwing', async () => {
    const d = digest('gone with the rest');
    await store.put(d, source('gone with the rest'));
    await rm(root, { recursive: true, force: true });
    expect(await store.confirm(d, 18)).toEqual({ held: false, path: blobFile(d), problem: 'its file is missing' });
  });

  it('a put of a blob whose file went, or was cut short, writes it whole again', async () => {
    const bytes = randomBytes(5000);
    const d = digest(bytes);
    await store.put(d, source(bytes), bytes.length);
    await rm(root, { recursive: true, force: true });
    await store.put(d, source(bytes), bytes.length);
    expect(sha256Hex(await readBlob(d))).toBe(d.encoded);
    await truncate(blobFile(d), 10);
    // Cut short: replaced, whether the client said how long the blob is or not.
    await store.put(d, source(bytes), bytes.length);
    expect((await readBlob(d)).length).toBe(bytes.length);
    await truncate(blobFile(d), 10);
    await store.put(d, source(bytes));
    expect(sha256Hex(await readBlob(d))).toBe(d.encoded);
    await truncate(blobFile(d), 10);
    const id = store.createUpload();
    await store.completeUpload(id, d, { lastChunk: { source: source(bytes), options: {} } });
    expect(sha256Hex(await readBlob(d))).toBe(d.encoded);
    expect(await filesUnder('staging')).toEqual([]);
  });

  it('checkWritable passes on a store that can be written, and names the root once it is gone', async () => {
    await store.checkWritable();
    await rm(root, { recursive: true, force: true });
    const err = await expectRejection(store.checkWritable(), StorageFailedError);
    expect(err).toMatchObject({ systemCode: 'ENOENT', path: root, message: "the blob store's root is gone" });
  });
});

// A write the storage refuses is the registry's failure, never the client's: not a busy
// session (400), not a missing path. Read-only and full filesystems are caused for real in the
// gateway's storage-fault tests; EACCES cannot be (this runs as root, which permissions do not
// stop), so here the driver is made to refuse.
describe('writes the storage refuses', () => {
  function refusing(code: string, operations: ReadonlyArray<keyof StorageDriver>): BlobStore {
    const driver = new FilesystemDriver(root);
    const fault = (relative: string) => Object.assign(new Error(`${code}: refused, ${path.join(root, relative)}`), { code, syscall: 'open', path: path.join(root, relative) });
    const wrapped = new Proxy(driver, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        if (!operations.includes(property as keyof StorageDriver)) return value.bind(target);
        return async (relative: string) => {
          throw fault(relative);
        };
      },
    });
    return new BlobStore(wrapped);
  }

  it('a session folder the storage will not make is StorageFailedError naming EACCES and the path, not a busy session', async () => {
    const refused = refusing('EACCES', ['createExclusive']);
    const id = refused.createUpload();
    const err = await expectRejection(refused.appendUpload(id, source('chunk')), StorageFailedError);
    expect(err).toMatchObject({ systemCode: 'EACCES', path: expect.stringMatching(new RegExp(`^${root}/staging/[^/]+/data\\.`)) });
    expect(err.message).toContain('EACCES (permission denied)');
    expect(err.message).not.toContain(root);
  });

  it('a monolithic write or a session closed is StorageFailedError, or StorageFullError for no space', async () => {
    const bytes = Buffer.from('refused bytes');
    const full = await expectRejection(refusing('ENOSPC', ['writer']).put(digest(bytes), source(bytes), bytes.length), StorageFullError);
    expect(full.systemCode).toBe('ENOSPC');
    expect(full.path).toMatch(new RegExp(`^${root}/staging/`));
    const id = store.createUpload();
    await store.appendUpload(id, source(bytes));
    const moved = await expectRejection(refusing('EIO', ['move']).completeUpload(id, digest(bytes)), StorageFailedError);
    expect(moved.systemCode).toBe('EIO');
    const cancelled = await expectRejection(refusing('EROFS', ['move']).cancelUpload(id), StorageFailedError);
    expect(cancelled.systemCode).toBe('EROFS');
    // The client's own faults stay what they are.
    await expectRejection(refusing('EACCES', ['move']).put(digest(bytes), source(bytes), bytes.length + 1), SizeInvalidError);
    const gone = await expectRejection(refusing('EACCES', ['move']).put(digest(bytes), failingSource(bytes.subarray(0, 4)), bytes.length), Error);
    expect(gone.message).toBe('client went away');
  });

  // The rename into blobs/ done, the sync of its folder refused (EIO, which cannot be caused for
  // real): the storage's fault, with its cause, not a session "taken over by another request".
  it('a close whose folder sync fails after the rename is StorageFailedError naming EIO', async () => {
    class SyncRefusedAfterRename extends FilesystemDriver {
      override async move(from: string, to: string, options?: MoveOptions): Promise<void> {
        await super.move(from, to, options);
        if (to.startsWith('blobs/')) throw Object.assign(new Error(`EIO: i/o error, fsync '${path.join(root, path.dirname(to))}'`), { code: 'EIO', path: path.join(root, path.dirname(to)) });
      }
    }
    const bytes = Buffer.from('synced badly');
    const id = store.createUpload();
    await store.appendUpload(id, source(bytes));
    const err = await expectRejection(new BlobStore(new SyncRefusedAfterRename(root)).completeUpload(id, digest(bytes)), StorageFailedError);
    expect(err.systemCode).toBe('EIO');
    // The verified bytes stay where they went; the session is not left holding a claim.
    expect(await readBlob(digest(bytes))).toEqual(bytes);
    expect(await filesUnder('uploads')).toEqual([]);
  });
});

describe('a session folder left without bytes (no data, no data.<holder>)', () => {
  const longAgo = () => (Date.now() - 2 * 3600_000) / 1000;
  /** A driver that fails once a claim has looked at the folder far more often than pausing allows (a spin). */
  class SpinGuard extends FilesystemDriver {
    looks = 0;
    override async list(relative: string): Promise<string[]> {
      if (++this.looks > 1000) throw new Error(`still looking after ${this.looks} looks`);
      return super.list(relative);
    }
  }

  /** Session `id`'s folder, untouched long ago, holding only the file `name` (itself old too if `fileStale`). */
  async function staleFolderHolding(id: string, name: string, content: string, fileStale: boolean): Promise<string> {
    const folder = path.join(root, 'uploads', id);
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, name), content);
    if (fileStale) await utimes(path.join(folder, name), longAgo(), longAgo());
    await utimes(folder, longAgo(), longAgo());
    return folder;
  }

  // Anything the store does not know (an NFS .nfsXXXX file, a stray entry) may be someone's: the
  // stale-upload purge removes such a folder, a request does not.
  it('a stale one holding a file the store does not know is busy, refused after the usual wait without spinning', async () => {
    const guarded = new BlobStore(new SpinGuard(root));
    const id = guarded.createUpload();
    const folder = await staleFolderHolding(id, '.nfs0001', '', false);
    await expectRejection(guarded.appendUpload(id, source('x')), BlobUploadInvalidError);
    expect(await guarded.cancelUpload(id)).toBe(false);
    expect(await readdir(folder)).toEqual(['.nfs0001']);
  });

  // The lock file of the store's earlier version, left by a crash, is known: stale, it goes.
  it('a stale one holding only an earlier version\'s stale lock is taken', async () => {
    const guarded = new BlobStore(new SpinGuard(root));
    const id = guarded.createUpload();
    await staleFolderHolding(id, 'lock', '{"pid":1}', true);
    expect(await guarded.appendUpload(id, source('x'))).toBe(1);
    expect(await filesUnder('uploads')).toEqual([`uploads/${id}/data`]);
  });

  it('one that cannot be looked at is a storage fault, not a session to take', async () => {
    class Unreadable extends SpinGuard {
      override async stat(relative: string) {
        if (/^uploads\/[^/]+$/.test(relative)) throw Object.assign(new Error('EIO: i/o error, stat'), { code: 'EIO' });
        return super.stat(relative);
      }
    }
    const guarded = new BlobStore(new Unreadable(root));
    const id = guarded.createUpload();
    await mkdir(path.join(root, 'uploads', id), { recursive: true });
    await writeFile(path.join(root, 'uploads', id, 'sha256'), '');
    const err = await expectRejection(guarded.appendUpload(id, source('x')), StorageFailedError);
    expect(err.systemCode).toBe('EIO');
  });
});

describe('two requests breaking the same stale session folder at once', () => {
  // Two BlobStores (two processes) find the same folder empty and stale, and each judges it
  // left by a crash. A request that removed it and made it anew could have its new folder
  // removed by the other's late removal (ABA), and both would hold the session: each answers
  // its chunk, the last release wins, and the other's running hash vouches for bytes not in the
  // file. The hooks force that interleaving where the store would allow it.
  it('exactly one holds the session; the other is refused, and the session holds the holder\'s bytes', async () => {
    const id = store.createUpload();
    const relative = `uploads/${id}`;
    const folder = path.join(root, relative);
    await mkdir(folder, { recursive: true });
    const old = (Date.now() - 2 * 3600_000) / 1000;
    await utimes(folder, old, old);
    let listed = 0;
    let allListed!: () => void;
    const bothListed = new Promise<void>((resolve) => (allListed = resolve));
    let madeIt!: () => void;
    const someoneMadeIt = new Promise<void>((resolve) => (madeIt = resolve));
    let removals = 0;
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    class Racing extends FilesystemDriver {
      private hasListed = false;
      override async list(path: string): Promise<string[]> {
        const names = await super.list(path);
        if (path === relative && !this.hasListed) {
          this.hasListed = true;
          if (++listed === 2) allListed();
          await Promise.race([bothListed, pause(1000)]);
        }
        return names;
      }
      override async createFolder(path: string): Promise<boolean> {
        const made = await super.createFolder(path);
        if (made && path === relative) madeIt();
        return made;
      }
      override async removeEmptyFolder(path: string): Promise<void> {
        // The second removal lands only after the first breaker has made the folder anew.
        if (path === relative && removals++ > 0) await Promise.race([someoneMadeIt, pause(1000)]);
        return super.removeEmptyFolder(path);
      }
    }
    const a = new BlobStore(new Racing(root), { staleLockMs: 1000 });
    const b = new BlobStore(new Racing(root), { staleLockMs: 1000 });
    const results = await Promise.allSettled([
      a.appendUpload(id, source('AAAA'), { start: 0, length: 4 }),
      b.appendUpload(id, source('BBBB'), { start: 0, length: 4 }),
    ]);
    const answered = results.flatMap((result, i) => (result.status === 'fulfilled' ? [{ text: i === 0 ? 'AAAA' : 'BBBB', size: result.value }] : []));
    expect(answered).toHaveLength(1);
    expect(answered[0]!.size).toBe(4);
    expect(await readFile(path.join(folder, 'data'), 'utf8')).toBe(answered[0]!.text);
    const winner = answered[0]!.text === 'AAAA' ? a : b;
    expect(await winner.completeUpload(id, digest(answered[0]!.text))).toEqual({ digest: digest(answered[0]!.text).value, size: 4 });
  });
});

describe('a closing PUT whose body has no Content-Range, while another request holds the bytes', () => {
  it('waits for the bytes another process holds, and closes with them', async () => {
    const id = store.createUpload();
    const held = await heldBy(id, 'another-process', 'abc');
    setTimeout(() => void rename(held, path.join(root, 'uploads', id, 'data')), 200);
    const other = new BlobStore(new FilesystemDriver(root));
    expect(await other.completeUpload(id, digest('abcdef'), { lastChunk: { source: source('def'), options: {} } })).toEqual({ digest: digest('abcdef').value, size: 6 });
    expect(await filesUnder('uploads')).toEqual([]);
  });

  // A client whose PUT stalled mid-body retries at once, while the first attempt still holds the session.
  it('a retry waits for the first attempt, whose client went away, and closes the session', async () => {
    const id = store.createUpload();
    expect(await store.appendUpload(id, source('abc'), { start: 0, length: 3 })).toBe(3);
    const stalled = new PassThrough();
    const first = store.completeUpload(id, digest('abcdef'), { lastChunk: { source: stalled, options: {} } });
    // Its failure is expected while the retry still waits: a handler from the start, or the
    // rejection counts as unhandled.
    const firstFailed = expectRejection(first, Error);
    await waitForChunkUnderWay(id);
    setTimeout(() => stalled.destroy(new Error('client went away')), 300);
    const other = new BlobStore(new FilesystemDriver(root));
    expect(await other.completeUpload(id, digest('abcdef'), { lastChunk: { source: source('def'), options: {} } })).toEqual({ digest: digest('abcdef').value, size: 6 });
    await firstFailed;
  });
});

describe('a session the storage will not give back', () => {
  // The rename back to `data` refused (EIO, EROFS, EACCES): the chunk is answered as the storage
  // fault it is, not 202, and this process takes its own stranded claim at the next request
  // rather than telling the client the session is busy for the stale limit.
  it('a failed rename back is StorageFailedError, and the next chunk here takes the session on', async () => {
    let refuse = true;
    class RefusesRelease extends FilesystemDriver {
      override async move(from: string, to: string, options?: { flush?: boolean; durable?: boolean }): Promise<void> {
        if (refuse && /\/data\.[^/]+$/.test(from) && to.endsWith('/data')) {
          refuse = false;
          throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
        }
        return super.move(from, to, options);
      }
    }
    const refusing = new BlobStore(new RefusesRelease(root));
    const id = refusing.createUpload();
    const err = await expectRejection(refusing.appendUpload(id, source('abc')), StorageFailedError);
    expect(err.systemCode).toBe('EIO');
    expect(await refusing.uploadSize(id)).toBe(3);
    expect(await refusing.appendUpload(id, source('def'), { start: 3, length: 3 })).toBe(6);
    expect(await refusing.completeUpload(id, digest('abcdef'))).toEqual({ digest: digest('abcdef').value, size: 6 });
  });
});

describe('a session given back half-way (linked as data, its claimed name left)', () => {
  // The give-back links the claimed file as `data` and then unlinks the claimed name; an unlink
  // refused there (EPERM, EIO: a wrapper, as the fault cannot be made on demand) leaves both
  // names on one file, the claimed one stranded to this process. Another process may then take
  // `data` and close the session as a blob: the stranded name still reaches the blob's file, and
  // a late chunk taking it must write into a file of its own, never into the blob.
  it('a late chunk taking the stranded name cannot write into the blob the session became', async () => {
    let refuseUnlink = true;
    class UnlinkRefusedAfterLink extends FilesystemDriver {
      override async move(from: string, to: string, options?: MoveOptions): Promise<void> {
        if (refuseUnlink && options?.replace === false) {
          refuseUnlink = false;
          await link(path.join(root, from), path.join(root, to));
          throw Object.assign(new Error(`EPERM: operation not permitted, unlink '${path.join(root, from)}'`), { code: 'EPERM' });
        }
        return super.move(from, to, options);
      }
    }
    const stranding = new BlobStore(new UnlinkRefusedAfterLink(root));
    const id = stranding.createUpload();
    expect((await expectRejection(stranding.appendUpload(id, source('abc')), StorageFailedError)).systemCode).toBe('EPERM');
    const other = new BlobStore(new FilesystemDriver(root));
    expect(await other.completeUpload(id, digest('abc'))).toEqual({ digest: digest('abc').value, size: 3 });
    await stranding.appendUpload(id, source('XYZ'), { start: 3 });
    expect(await readBlob(digest('abc'))).toEqual(Buffer.from('abc'));
  });
});

describe('the size of a session being released while it is looked at', () => {
  // The look at `data` misses the bytes (held), the holder renames them back, and the look for
  // a claimed file then finds none: looked at again, the session holds its bytes.
  it('reports the bytes, never 0', async () => {
    const id = store.createUpload();
    const folder = path.join(root, 'uploads', id);
    const held = await heldBy(id, 'another-process', 'abc');
    class ReleasedBetween extends FilesystemDriver {
      override async list(relative: string): Promise<string[]> {
        if (relative === `uploads/${id}`) await rename(held, path.join(folder, 'data')).catch(() => undefined);
        return super.list(relative);
      }
    }
    expect(await new BlobStore(new ReleasedBetween(root)).uploadSize(id)).toBe(3);
  });

  it('a holder\'s file that cannot be looked at fails a chunk as the storage fault, not as a busy session', async () => {
    const id = store.createUpload();
    await heldBy(id, 'another-process', 'abc');
    const err = await expectRejection(new BlobStore(new ClaimsUnreadable(root)).appendUpload(id, source('def')), StorageFailedError);
    expect(err.systemCode).toBe('EIO');
  });

  it('a claimed file that cannot be looked at is an error, not an empty session', async () => {
    const id = store.createUpload();
    await heldBy(id, 'another-process', 'abc');
    await expect(new BlobStore(new ClaimsUnreadable(root)).uploadSize(id)).rejects.toMatchObject({ code: 'EIO' });
  });
});

describe('purgeStale and a session a request has just claimed', () => {
  // The claim's rename keeps the file's old time; the claim's own time, in its name, is now.
  it('keeps a long-idle session a request has just claimed', async () => {
    const id = store.createUpload();
    await store.appendUpload(id, source('idle'));
    const old = (Date.now() - 2 * 3600_000) / 1000;
    await utimes(path.join(root, 'uploads', id, 'data'), old, old);
    const slow = new PassThrough();
    const writing = store.appendUpload(id, slow);
    await waitForChunkUnderWay(id);
    const purged = await new BlobStore(new FilesystemDriver(root)).purgeStale(3600_000);
    expect(purged.sessions).toEqual([]);
    slow.end('-more');
    expect(await writing).toBe(9);
    expect(await readFile(path.join(root, 'uploads', id, 'data'), 'utf8')).toBe('idle-more');
  });

  it('keeps a session whose files cannot be looked at now, rather than removing it unseen', async () => {
    const id = store.createUpload();
    const held = await heldBy(id, 'another-process', 'abc');
    const old = (Date.now() - 2 * 3600_000) / 1000;
    await utimes(held, old, old);
    await utimes(path.dirname(held), old, old);
    expect((await new BlobStore(new ClaimsUnreadable(root)).purgeStale(3600_000)).sessions).toEqual([]);
    expect(await readFile(held, 'utf8')).toBe('abc');
  });

  // A session's folder goes between the purge's listing and its look (a failed first chunk
  // released, a close done): the session may still be open, with no files at all, as every
  // session is before its first chunk. It is not the purge's to end.
  it('does not report a session whose folder went after the listing', async () => {
    const id = store.createUpload();
    class FolderGoneAfterListing extends FilesystemDriver {
      override async list(relative: string): Promise<string[]> {
        const names = await super.list(relative);
        return relative === paths.uploadsRoot ? [...names, id] : names;
      }
    }
    expect((await new BlobStore(new FolderGoneAfterListing(root)).purgeStale(0)).sessions).toEqual([]);
  });
});

describe('giving a session back (the rename of data.<holder> to data)', () => {
  /** A session holding 'abc' whose second chunk, 'def', is under way: its request refused as BLOB_UPLOAD_INVALID once `finish` sends the rest. */
  const secondChunkUnderWay = async () => {
    const id = store.createUpload();
    expect(await store.appendUpload(id, source('abc'))).toBe(3);
    const body = new PassThrough();
    const writing = expectRejection(store.appendUpload(id, body, { start: 3 }), BlobUploadInvalidError);
    await waitForChunkUnderWay(id);
    return { id, writing, finish: () => body.end('def') };
  };

  // A writer the claim did not exclude (an earlier version's gateway in a rolling upgrade wrote
  // `data` by name under its own lock file) puts `data` there while this request holds the
  // session: giving the bytes back by rename would replace that writer's bytes.
  it('never replaces a data another writer put there meanwhile: the chunk is refused and those bytes stay', async () => {
    const { id, writing, finish } = await secondChunkUnderWay();
    await writeFile(path.join(root, 'uploads', id, 'data'), 'the other writer');
    finish();
    const err = await writing;
    expect(err.message).toMatch(/another writer/);
    expect(await readFile(path.join(root, 'uploads', id, 'data'), 'utf8')).toBe('the other writer');
    // This request's bytes are set aside under staging/, for the purge: not left as a claim.
    expect(await filesUnder(`uploads/${id}`)).toEqual([`uploads/${id}/data`]);
    expect(await store.uploadSize(id)).toBe('the other writer'.length);
  });

  // Another process judged this holder gone (its heartbeat seen as stopped) and took the session
  // over: this request's chunk may be anywhere in the bytes now, or nowhere.
  it('a request whose hold was taken over while it wrote does not answer success', async () => {
    const { id, writing, finish } = await secondChunkUnderWay();
    const other = new BlobStore(new FilesystemDriver(root), { staleLockMs: 1 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await other.appendUpload(id, source('XYZ'));
    finish();
    expect((await writing).message).toMatch(/taken over|another writer/);
  });

  // A holder judged gone may still be writing (a process paused, a host cut off): its open file
  // keeps taking bytes wherever the file's name has gone since. Whatever it writes after the
  // takeover must reach neither the bytes the new holder verifies nor the blob they become.
  it("a writer whose hold was taken over cannot put a byte into the blob the session became", async () => {
    // Sizes the writer puts on disk at once, with nothing kept back in memory (fs-writer.ts
    // gathers 1 MiB before its first write, and writes block-aligned).
    const first = randomBytes(4096);
    const second = randomBytes(1024 * 1024);
    const id = store.createUpload();
    expect(await store.appendUpload(id, source(first))).toBe(first.length);
    const body = new PassThrough();
    const writing = expectRejection(store.appendUpload(id, body, { start: first.length }), BlobUploadInvalidError);
    body.write(second);
    const held = path.join(root, 'uploads', id, await waitForChunkUnderWay(id));
    await vi.waitFor(async () => expect((await stat(held)).size).toBe(first.length + second.length));
    const whole = Buffer.concat([first, second]);
    const other = new BlobStore(new FilesystemDriver(root), { staleLockMs: 0 });
    expect(await other.completeUpload(id, digest(whole))).toEqual({ digest: digest(whole).value, size: whole.length });
    body.end(Buffer.from('written after the takeover'));
    expect((await writing).message).toMatch(/taken over/);
    expect(sha256Hex(await readBlob(digest(whole)))).toBe(sha256Hex(whole));
  });

  it('a heartbeat that fails is reported once, with the session and the cause', async () => {
    class TouchRefused extends FilesystemDriver {
      override async touch(): Promise<void> {
        throw Object.assign(new Error('EIO: i/o error, utime'), { code: 'EIO' });
      }
    }
    const warnings: Array<{ details: Record<string, unknown>; message: string }> = [];
    const beating = new BlobStore(new TouchRefused(root), { staleLockMs: 40, warn: (details, message) => warnings.push({ details, message }) });
    const id = beating.createUpload();
    const body = new PassThrough();
    const writing = beating.appendUpload(id, body);
    await waitForChunkUnderWay(id);
    // Several heartbeats (every 10 ms) fail meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 100));
    body.end('abc');
    expect(await writing).toBe(3);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.details).toMatchObject({ upload: id, cause: expect.stringMatching(/EIO/) });
  });
});

describe('cleanup that fails after a chunk', () => {
  // The failed first chunk's file cannot be removed: kept as a claim under this process's name,
  // every request would find the session busy, here for as long as the process runs.
  it('is reported with its path and cause, and leaves no claim held', async () => {
    let refuse = true;
    class DeleteRefused extends FilesystemDriver {
      override async delete(relative: string): Promise<void> {
        if (refuse && /\/data\.[^/]+$/.test(relative)) {
          refuse = false;
          throw Object.assign(new Error('EIO: i/o error, unlink'), { code: 'EIO' });
        }
        return super.delete(relative);
      }
    }
    const warnings: Array<{ details: Record<string, unknown>; message: string }> = [];
    const failing = new BlobStore(new DeleteRefused(root), { warn: (details, message) => warnings.push({ details, message }) });
    const id = failing.createUpload();
    await expectRejection(failing.appendUpload(id, failingSource(Buffer.from('abc'))), Error);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.details).toMatchObject({ upload: id, path: expect.stringContaining(`uploads/${id}/data.`), cause: expect.stringMatching(/EIO/) });
    expect((await filesUnder('uploads')).filter((name) => name.includes('/data.'))).toEqual([]);
    const other = new BlobStore(new FilesystemDriver(root));
    expect(await other.appendUpload(id, source('x'))).toBeGreaterThan(0);
  });
});

describe('a cancel racing a request that places the session anew', () => {
  // Between the cancel's removal of the session's files and of its folder, another request's
  // placement (staging/<uuid> renamed onto uploads/<id>, which succeeds onto an empty folder)
  // fills the folder again: the removal then meets ENOTEMPTY.
  it('never fails with the storage error: the cancel is done, the placed folder is the placer\'s', async () => {
    for (let round = 0; round < 200; round++) {
      const id = store.createUpload();
      expect(await store.appendUpload(id, source('abc'))).toBe(3);
      const staged = path.join(root, 'staging', `placer-${round}`);
      await mkdir(staged, { recursive: true });
      await writeFile(path.join(staged, 'data.racing-request'), '');
      let placing = true;
      const placer = (async () => {
        // Refused while the folder holds anything; tried again at once, as often as it can.
        while (placing) {
          try {
            await rename(staged, path.join(root, 'uploads', id));
            return;
          } catch {
            // ENOTEMPTY: the session's files are still there.
          }
        }
      })();
      const cancelled = await store.cancelUpload(id).then(
        () => undefined,
        (err: unknown) => err,
      );
      placing = false;
      await placer;
      expect(cancelled, `round ${round}`).toBeUndefined();
    }
  });
});

describe('a closing PUT onto a blob the store already holds', () => {
  // What the close moves into place hashes to its digest (read again, or a digest taken earlier
  // whose session the owner's record still has open): it replaces whatever file is there, so a
  // push heals bytes that changed under the blob's name (a bad disk, a hand), as a replica
  // transfer of a blob recorded pending relies on.
  it('replaces one of the same size whose bytes changed', async () => {
    const bytes = randomBytes(300_000);
    const d = digest(bytes);
    await store.put(d, source(bytes));
    await writeFile(path.join(root, paths.blob(d)), randomBytes(bytes.length));
    const id = store.createUpload();
    await store.appendUpload(id, source(bytes));
    expect(await new BlobStore(new FilesystemDriver(root)).completeUpload(id, d)).toEqual({ digest: d.value, size: bytes.length });
    expect((await readFile(path.join(root, paths.blob(d)))).equals(bytes)).toBe(true);
    expect(await filesUnder('uploads')).toEqual([]);
  });

  // "a push heals a blob whose bytes were lost" (storeVerified): cut short, it is replaced.
  it('replaces one of another size', async () => {
    const bytes = Buffer.from('the whole blob');
    const d = digest(bytes);
    await store.put(d, source(bytes));
    await truncate(path.join(root, paths.blob(d)), 3);
    const id = store.createUpload();
    await store.appendUpload(id, source(bytes));
    expect(await store.completeUpload(id, d)).toEqual({ digest: d.value, size: bytes.length });
    expect(await readFile(path.join(root, paths.blob(d)), 'utf8')).toBe('the whole blob');
  });
});

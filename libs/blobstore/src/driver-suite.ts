import { createHash, randomBytes } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PathNotFoundError, type StorageDriver } from './driver.js';

/** What a driver's test file gives the suite for each test. */
export interface DriverUnderTest {
  /** A fresh driver over an empty store whose root exists. */
  driver: StorageDriver;
  cleanup(): Promise<void>;
  /**
   * Removes everything the driver stores, its root included, behind the driver's back: what an
   * operator deleting the data directory, or a lost volume, does to a running gateway.
   */
  wipe(): Promise<void>;
}

/**
 * The shared StorageDriver test suite (CONTRIBUTING.md, 'Adding a storage driver'; after
 * Distribution's driver/testsuites): every driver registers it from its own `*.test.ts`, with a
 * factory giving a fresh, empty driver, a cleanup and a way to lose everything. Each test checks
 * one clause of the contract in driver.ts and cites it.
 *
 *   describeStorageDriverSuite('filesystem', async () => { ...; return { driver, cleanup, wipe } });
 */
export function describeStorageDriverSuite(name: string, createDriver: () => Promise<DriverUnderTest>): void {
  describe(`StorageDriver contract: ${name}`, () => {
    let driver: StorageDriver;
    let cleanup: (() => Promise<void>) | undefined;
    let wipe: () => Promise<void>;

    beforeEach(async () => {
      const created = await createDriver();
      driver = created.driver;
      cleanup = () => created.cleanup();
      wipe = () => created.wipe();
    });

    afterEach(async () => {
      await cleanup?.();
      cleanup = undefined;
    });

    describe('stat', () => {
      // driver.ts stat: "throws PathNotFoundError when nothing is at path".
      it('throws PathNotFoundError for a missing path, naming the path', async () => {
        const err = await driver.stat('missing/file').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PathNotFoundError);
        expect((err as PathNotFoundError).path).toBe('missing/file');
      });

      it('throws PathNotFoundError below a file', async () => {
        await driver.putContent('a/file', 'x');
        await expect(driver.stat('a/file/child')).rejects.toBeInstanceOf(PathNotFoundError);
      });

      // driver.ts stat: "Size and modification time".
      it('gives the size and a valid modification time of a file', async () => {
        await driver.putContent('a/b/file', new Uint8Array(1234));
        const info = await driver.stat('a/b/file');
        expect(info.size).toBe(1234);
        expect(info.isDirectory).toBe(false);
        expect(info.modifiedAt).toBeInstanceOf(Date);
        expect(Number.isNaN(info.modifiedAt.getTime())).toBe(false);
      });

      it('gives size 0 for an empty file', async () => {
        await driver.putContent('empty', new Uint8Array(0));
        expect((await driver.stat('empty')).size).toBe(0);
      });
    });

    describe('putContent / getContent', () => {
      // driver.ts putContent/getContent: small whole-file writes, parent folders created.
      it('round-trips bytes and strings, creating parent folders', async () => {
        const bytes = allByteValues();
        await driver.putContent('deep/er/still/bytes', bytes);
        await driver.putContent('text', 'héllo wörld');
        expect(Buffer.compare(await driver.getContent('deep/er/still/bytes'), bytes)).toBe(0);
        expect((await driver.getContent('text')).toString('utf8')).toBe('héllo wörld');
        expect((await driver.stat('deep/er/still')).isDirectory).toBe(true);
      });

      it('round-trips an empty file', async () => {
        await driver.putContent('e', '');
        expect((await driver.getContent('e')).length).toBe(0);
      });

      it('replaces existing content entirely, longer or shorter', async () => {
        await driver.putContent('f', 'a much longer first version');
        await driver.putContent('f', 'short');
        expect((await driver.getContent('f')).toString()).toBe('short');
        await driver.putContent('f', 'and a longer one again');
        expect((await driver.getContent('f')).toString()).toBe('and a longer one again');
      });

      // driver.ts putContent: "atomic (replace-by-rename)": no temporary files remain beside it.
      it('leaves nothing but the file in its folder', async () => {
        await driver.putContent('dir/state', 'one');
        await driver.putContent('dir/state', 'two');
        expect(await driver.list('dir')).toEqual(['state']);
      });

      // driver.ts putContent: atomic: concurrent writers leave one whole version, never a mix.
      it('leaves one whole version after concurrent writes to the same path', async () => {
        const versions = Array.from({ length: 8 }, (_, i) => Buffer.alloc(64 * 1024, i + 1));
        await Promise.all(versions.map((v) => driver.putContent('race/state', v)));
        const content = await driver.getContent('race/state');
        expect(versions.some((v) => Buffer.compare(v, content) === 0)).toBe(true);
        expect(await driver.list('race')).toEqual(['state']);
      });

      // driver.ts putContent: a reader sees old bytes or new, never a mix.
      it('lets a reader opened before a replace read one whole version', async () => {
        const before = Buffer.alloc(512 * 1024, 1);
        const after = Buffer.alloc(512 * 1024, 2);
        await driver.putContent('swap', before);
        const reader = await driver.reader('swap');
        await driver.putContent('swap', after);
        const read = await readAll(reader);
        expect(Buffer.compare(read, before) === 0 || Buffer.compare(read, after) === 0).toBe(true);
      });

      it('throws PathNotFoundError from getContent for a missing path', async () => {
        await expect(driver.getContent('nope')).rejects.toBeInstanceOf(PathNotFoundError);
      });
    });

    describe('reader', () => {
      const content = Buffer.from('0123456789abcdefghij');

      // driver.ts reader: "A stream of the bytes from start (inclusive) to end (inclusive, default: the last byte)".
      it('reads the whole file without a range', async () => {
        await driver.putContent('r', content);
        expect((await readAll(await driver.reader('r'))).toString()).toBe(content.toString());
      });

      it('reads an inclusive range', async () => {
        await driver.putContent('r', content);
        expect((await readAll(await driver.reader('r', { start: 2, end: 5 }))).toString()).toBe('2345');
        expect((await readAll(await driver.reader('r', { start: 0, end: 0 }))).toString()).toBe('0');
        expect((await readAll(await driver.reader('r', { start: 19, end: 19 }))).toString()).toBe('j');
        expect((await readAll(await driver.reader('r', { start: 0, end: 19 }))).toString()).toBe(content.toString());
      });

      it('reads from start to the last byte when end is absent', async () => {
        await driver.putContent('r', content);
        expect((await readAll(await driver.reader('r', { start: 10 }))).toString()).toBe('abcdefghij');
        expect((await readAll(await driver.reader('r', { start: 0 }))).toString()).toBe(content.toString());
      });

      it('reads a range of a large file exactly', async () => {
        const big = randomBytes(3 * 1024 * 1024 + 17);
        await driver.putContent('big', big);
        const start = 1024 * 1024 - 3;
        const end = 2 * 1024 * 1024 + 5;
        expect(Buffer.compare(await readAll(await driver.reader('big', { start, end })), big.subarray(start, end + 1))).toBe(0);
        expect(sha256(await readAll(await driver.reader('big')))).toBe(sha256(big));
      });

      it('reads an empty file as no bytes', async () => {
        await driver.putContent('empty', new Uint8Array(0));
        expect((await readAll(await driver.reader('empty'))).length).toBe(0);
      });

      // driver.ts reader: "Throws PathNotFoundError" (from reader(), not as a later stream error).
      it('throws PathNotFoundError for a missing path', async () => {
        await expect(driver.reader('missing')).rejects.toBeInstanceOf(PathNotFoundError);
      });

      // driver.ts reader: "A reader opened before a delete keeps reading the old bytes to the end".
      it('lets a reader opened before a delete read all bytes', async () => {
        const big = randomBytes(2 * 1024 * 1024 + 1);
        await driver.putContent('doomed', big);
        const reader = await driver.reader('doomed');
        await driver.delete('doomed');
        await expect(driver.stat('doomed')).rejects.toBeInstanceOf(PathNotFoundError);
        expect(sha256(await readAll(reader))).toBe(sha256(big));
      });

      it('lets a reader that has started read all bytes after a delete', async () => {
        const big = randomBytes(2 * 1024 * 1024 + 1);
        await driver.putContent('doomed', big);
        const reader = await driver.reader('doomed');
        const first = await readSome(reader);
        expect(first.length).toBeGreaterThan(0);
        await driver.delete('doomed');
        const rest = await readAll(reader);
        expect(sha256(Buffer.concat([first, rest]))).toBe(sha256(big));
      });

      // A client that goes away mid-pull: the reader is destroyed and the file is unharmed.
      // (A loop of destroy-then-reopen also exposes descriptor double-closes; fs-driver.test.ts
      // checks that deterministically.)
      it('can be destroyed part-way, leaving the file whole for later readers', async () => {
        const big = randomBytes(1024 * 1024);
        await driver.putContent('f', big);
        const reader = await driver.reader('f');
        expect((await readSome(reader)).length).toBeGreaterThan(0);
        reader.destroy();
        await new Promise<void>((resolve) => (reader.closed ? resolve() : reader.once('close', () => resolve())));
        expect((await driver.stat('f')).size).toBe(big.length);
        expect(sha256(await readAll(await driver.reader('f')))).toBe(sha256(big));
      });
    });

    describe('writer', () => {
      // driver.ts writer: "creating parent folders".
      it('writes a new file, creating parent folders', async () => {
        await writeAll(await driver.writer('w/x/y/z', { append: false }), ['hello ', 'world']);
        expect((await driver.getContent('w/x/y/z')).toString()).toBe('hello world');
        expect((await driver.stat('w/x/y/z')).size).toBe(11);
      });

      // driver.ts writer: without append, the write replaces what is there.
      it('overwrites an existing longer file without append', async () => {
        await driver.putContent('w', 'a long existing content');
        await writeAll(await driver.writer('w', { append: false }), ['new']);
        expect((await driver.getContent('w')).toString()).toBe('new');
      });

      // driver.ts writer: "with append the bytes go after any already there".
      it('appends after existing bytes with append', async () => {
        await writeAll(await driver.writer('log', { append: true }), ['one,']);
        await writeAll(await driver.writer('log', { append: true }), ['two,']);
        await writeAll(await driver.writer('log', { append: true }), ['three']);
        expect((await driver.getContent('log')).toString()).toBe('one,two,three');
      });

      it('creates the file (and its folders) when appending to nothing', async () => {
        await writeAll(await driver.writer('new/dir/appended', { append: true }), ['x']);
        expect((await driver.getContent('new/dir/appended')).toString()).toBe('x');
      });

      it('streams many chunks of binary data intact', async () => {
        const chunks = Array.from({ length: 40 }, () => randomBytes(64 * 1024 + 3));
        await writeAll(await driver.writer('stream', { append: false }), chunks);
        const expected = Buffer.concat(chunks);
        expect((await driver.stat('stream')).size).toBe(expected.length);
        expect(sha256(await readAll(await driver.reader('stream')))).toBe(sha256(expected));
      });

      it('writes an empty file when ended without data', async () => {
        await writeAll(await driver.writer('nothing', { append: false }), []);
        expect((await driver.stat('nothing')).size).toBe(0);
      });
    });

    describe('copyTo (optional)', () => {
      /** A destination that keeps what it is given, copying each chunk (the driver may reuse its buffers). */
      function collector(): { destination: Writable; bytes(): Buffer } {
        const chunks: Buffer[] = [];
        const destination = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            chunks.push(Buffer.from(chunk));
            setImmediate(callback); // an asynchronous consumer, like a socket
          },
        });
        return { destination, bytes: () => Buffer.concat(chunks) };
      }

      // driver.ts copyTo: "writes bytes start..end (inclusive) … reused buffers".
      it('copies whole files and ranges byte for byte, across many reused buffers', async () => {
        if (!driver.copyTo) return expect(driver.copyTo).toBeUndefined();
        const bytes = randomBytes(3 * 1024 * 1024 + 123);
        await writeAll(await driver.writer('copy/blob', { append: false }), [bytes]);
        for (const [start, end] of [[0, bytes.length - 1], [5, 5], [1024 * 1024 - 1, 2 * 1024 * 1024 + 7], [bytes.length - 10, bytes.length - 1]] as const) {
          const { destination, bytes: received } = collector();
          await driver.copyTo('copy/blob', { start, end }, destination);
          expect(sha256(received()), `${start}-${end}`).toBe(sha256(bytes.subarray(start, end + 1)));
        }
      });

      // driver.ts copyTo: "Throws PathNotFoundError before writing anything".
      it('throws PathNotFoundError for a missing path without writing', async () => {
        if (!driver.copyTo) return expect(driver.copyTo).toBeUndefined();
        const { destination, bytes } = collector();
        await expect(driver.copyTo('copy/missing', { start: 0, end: 9 }, destination)).rejects.toBeInstanceOf(PathNotFoundError);
        expect(bytes().length).toBe(0);
      });

      // driver.ts copyTo: "rejects if the destination closes early".
      it('rejects when the destination is destroyed part-way', async () => {
        if (!driver.copyTo) return expect(driver.copyTo).toBeUndefined();
        // Several chunks whatever size a driver copies in (the filesystem's first read of a file is in 4 MiB).
        const size = 16 * 1024 * 1024;
        await writeAll(await driver.writer('copy/long', { append: false }), [randomBytes(size)]);
        let writes = 0;
        const destination: Writable = new Writable({
          write(_chunk, _encoding, callback) {
            if (++writes === 2) destination.destroy();
            else setImmediate(callback);
          },
        });
        await expect(driver.copyTo('copy/long', { start: 0, end: size - 1 }, destination)).rejects.toThrow();
      });
    });

    describe('createExclusive', () => {
      // driver.ts createExclusive: "only if nothing is there … false when something already is".
      it('creates once, then answers false while the file exists, and true again after a delete', async () => {
        await driver.putContent('locks/keep', 'x');
        expect(await driver.createExclusive('locks/a')).toBe(true);
        expect(await driver.createExclusive('locks/a')).toBe(false);
        expect((await driver.stat('locks/a')).size).toBe(0);
        await driver.delete('locks/a');
        expect(await driver.createExclusive('locks/a')).toBe(true);
      });

      it('of many concurrent attempts, exactly one wins', async () => {
        await driver.putContent('locks/keep', 'x');
        const results = await Promise.all(Array.from({ length: 20 }, () => driver.createExclusive('locks/race')));
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      // driver.ts createExclusive: "a file at path holding content".
      it('writes the content it is given, and keeps the first writer\'s', async () => {
        expect(await driver.createExclusive('locks/owned', 'first')).toBe(true);
        expect(await driver.createExclusive('locks/owned', 'second')).toBe(false);
        expect((await driver.getContent('locks/owned')).toString()).toBe('first');
      });

      // driver.ts createExclusive: "Creates the parent folders."
      it('creates missing parent folders', async () => {
        expect(await driver.createExclusive('somewhere/deep/lock')).toBe(true);
        expect(await driver.list('somewhere/deep')).toEqual(['lock']);
        expect(await driver.createExclusive('somewhere/deep/lock')).toBe(false);
      });
    });

    describe('createFolder', () => {
      // driver.ts createFolder: "only if nothing is there … true when this call made it, false
      // when it was already there … (and any missing above it)".
      it('makes a folder and those above it once, then answers false while it is there', async () => {
        expect(await driver.createFolder('sessions/deep/one')).toBe(true);
        expect(await driver.createFolder('sessions/deep/one')).toBe(false);
        expect(await driver.list('sessions/deep')).toEqual(['one']);
        await driver.delete('sessions/deep/one');
        expect(await driver.createFolder('sessions/deep/one')).toBe(true);
      });

      // driver.ts createFolder: "atomically across processes".
      it('of many concurrent attempts, exactly one wins', async () => {
        const results = await Promise.all(Array.from({ length: 20 }, () => driver.createFolder('sessions/race')));
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('removeEmptyFolder (optional)', () => {
      // driver.ts removeEmptyFolder: "only if it is empty; … doing nothing, when it is not or is not there".
      it('removes an empty folder, and leaves one that holds anything', async () => {
        if (!driver.removeEmptyFolder) return expect(driver.removeEmptyFolder).toBeUndefined();
        // Written through writer(), so a driver that remembers folders it made remembers this one.
        await writeAll(await driver.writer('holder/full/file', { append: true }), ['x']);
        await driver.removeEmptyFolder('holder/full');
        expect(await driver.list('holder/full')).toEqual(['file']);
        await driver.delete('holder/full/file');
        await driver.removeEmptyFolder('holder/full');
        expect(await driver.list('holder')).toEqual([]);
        await driver.removeEmptyFolder('holder/never-was');
        // A folder removed this way can be written into again.
        await writeAll(await driver.writer('holder/full/again', { append: true }), ['y']);
        expect((await driver.getContent('holder/full/again')).toString()).toBe('y');
      });
    });

    describe('touch (optional)', () => {
      // driver.ts touch: "Sets the file's modification time to now, if it is there".
      it('moves the modification time to now, and does nothing for a missing path', async () => {
        if (!driver.touch) return expect(driver.touch).toBeUndefined();
        await driver.putContent('touched', 'x');
        const before = (await driver.stat('touched')).modifiedAt.getTime();
        await new Promise((resolve) => setTimeout(resolve, 50));
        await driver.touch('touched');
        expect((await driver.stat('touched')).modifiedAt.getTime()).toBeGreaterThan(before);
        expect((await driver.getContent('touched')).toString()).toBe('x');
        await driver.touch('nowhere/at-all');
        await expect(driver.stat('nowhere/at-all')).rejects.toBeInstanceOf(PathNotFoundError);
      });
    });

    describe('truncate', () => {
      // driver.ts truncate: "Cuts the file at path to size bytes".
      it('cuts a file to the given size', async () => {
        await driver.putContent('t', '0123456789');
        await driver.truncate('t', 4);
        expect((await driver.getContent('t')).toString()).toBe('0123');
        await driver.truncate('t', 0);
        expect((await driver.stat('t')).size).toBe(0);
      });

      it('keeps a file cut to its own size unchanged', async () => {
        await driver.putContent('t', 'abc');
        await driver.truncate('t', 3);
        expect((await driver.getContent('t')).toString()).toBe('abc');
      });

      it('lets appends continue after the cut', async () => {
        await writeAll(await driver.writer('t', { append: true }), ['good', 'bad']);
        await driver.truncate('t', 4);
        await writeAll(await driver.writer('t', { append: true }), ['more']);
        expect((await driver.getContent('t')).toString()).toBe('goodmore');
      });

      it('throws PathNotFoundError for a missing path', async () => {
        await expect(driver.truncate('missing', 0)).rejects.toBeInstanceOf(PathNotFoundError);
      });
    });

    describe('move', () => {
      // driver.ts move: "A folder moves onto nothing or an empty folder only … EEXIST or ENOTEMPTY".
      it('moves a folder onto nothing or an empty folder, and of many onto one place exactly one', async () => {
        await driver.createExclusive('staged/empty-target/file');
        await driver.delete('staged/empty-target/file');
        const folders = Array.from({ length: 5 }, (_, i) => `staged/from-${i}`);
        for (const folder of folders) await driver.createExclusive(`${folder}/file-${folder.slice(-1)}`);
        const results = await Promise.allSettled(folders.map((folder) => driver.move(folder, 'staged/empty-target', { durable: false })));
        expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
        for (const result of results) if (result.status === 'rejected') expect((result.reason as NodeJS.ErrnoException).code).toMatch(/^(EEXIST|ENOTEMPTY)$/);
        expect(await driver.list('staged/empty-target')).toHaveLength(1);
      });

      // driver.ts move: "Moves source to destination ... Creates the destination's parent folders."
      it('moves a file, creating the destination folders', async () => {
        await driver.putContent('src/file', 'payload');
        await driver.move('src/file', 'dst/deep/file');
        expect((await driver.getContent('dst/deep/file')).toString()).toBe('payload');
        await expect(driver.stat('src/file')).rejects.toBeInstanceOf(PathNotFoundError);
        expect(await driver.list('src')).toEqual([]);
      });

      // driver.ts move: "with flush, so are its bytes (a file written with durable: false)".
      it('moves a file written without durability with flush, and is PathNotFoundError for a missing source', async () => {
        await writeAll(await driver.writer('session/data', { append: true, durable: false }), [Buffer.from('chunk one '), Buffer.from('chunk two')]);
        await driver.move('session/data', 'blobs/whole', { flush: true });
        expect((await driver.getContent('blobs/whole')).toString()).toBe('chunk one chunk two');
        await expect(driver.move('session/data', 'blobs/other', { flush: true })).rejects.toBeInstanceOf(PathNotFoundError);
      });

      // driver.ts move: "of many moves of one source at once exactly one succeeds", durable or not.
      it('of many concurrent moves of one file, exactly one succeeds and the rest are PathNotFoundError', async () => {
        await driver.putContent('session/data', 'the bytes');
        const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => driver.move('session/data', `session/data.${i}`, { durable: false })));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PathNotFoundError);
        const [name] = await driver.list('session');
        expect((await driver.getContent(`session/${name!}`)).toString()).toBe('the bytes');
      });

      // driver.ts move: "With `replace: false` a file moves only where nothing is … EEXIST and leaves both files as they were".
      it('with replace: false, moves a file onto nothing, and refuses one that is there with EEXIST, leaving both', async () => {
        await driver.putContent('session/data.held', 'held bytes');
        await driver.move('session/data.held', 'session/data', { durable: false, replace: false });
        expect((await driver.getContent('session/data')).toString()).toBe('held bytes');
        expect(await driver.list('session')).toEqual(['data']);
        await driver.putContent('session/data.other', 'other bytes');
        await expect(driver.move('session/data.other', 'session/data', { durable: false, replace: false })).rejects.toMatchObject({ code: 'EEXIST' });
        expect((await driver.getContent('session/data')).toString()).toBe('held bytes');
        expect((await driver.getContent('session/data.other')).toString()).toBe('other bytes');
        await expect(driver.move('session/missing', 'session/data', { replace: false })).rejects.toBeInstanceOf(PathNotFoundError);
      });

      // driver.ts MoveOptions.whileFlushing: "must pass for the move to happen".
      it('moves only once the check run while the bytes are flushed has passed, and not at all when it fails', async () => {
        await driver.putContent('session/data', 'the bytes');
        const refused = new Error('the session has ended');
        await expect(driver.move('session/data', 'blob', { flush: true, whileFlushing: async () => Promise.reject(refused) })).rejects.toBe(refused);
        expect((await driver.getContent('session/data')).toString()).toBe('the bytes');
        await expect(driver.stat('blob')).rejects.toBeInstanceOf(PathNotFoundError);
        const check = vi.fn(async () => undefined);
        await driver.move('session/data', 'blob', { flush: true, whileFlushing: check });
        expect(check).toHaveBeenCalledTimes(1);
        expect((await driver.getContent('blob')).toString()).toBe('the bytes');
      });

      // driver.ts MoveOptions.whileFlushing: a check that throws at once has failed like one
      // that rejects; the flush already under way (here failing: no source) is still awaited,
      // not left to reject with nobody listening.
      it('a check that throws at once fails the move, and leaves no failure of the flush unheard', async () => {
        const unheard: unknown[] = [];
        const hear = (reason: unknown) => unheard.push(reason);
        process.on('unhandledRejection', hear);
        try {
          const refused = new Error('the session has ended');
          const throwsAtOnce = (): Promise<void> => {
            throw refused;
          };
          await expect(driver.move('session/missing', 'blob', { flush: true, whileFlushing: throwsAtOnce })).rejects.toBeDefined();
          // The flush's open of the missing source has failed by the time a later look at it has.
          await expect(driver.stat('session/missing')).rejects.toBeInstanceOf(PathNotFoundError);
          await new Promise((resolve) => setImmediate(resolve));
          expect(unheard).toEqual([]);
          await driver.putContent('session/data', 'the bytes');
          await expect(driver.move('session/data', 'blob', { flush: true, whileFlushing: throwsAtOnce })).rejects.toBe(refused);
          await expect(driver.stat('blob')).rejects.toBeInstanceOf(PathNotFoundError);
        } finally {
          process.off('unhandledRejection', hear);
        }
      });

      // driver.ts move: "replacing what is there".
      it('replaces an existing destination', async () => {
        await driver.putContent('a', 'new bytes');
        await driver.putContent('b', 'old bytes that are longer');
        await driver.move('a', 'b');
        expect((await driver.getContent('b')).toString()).toBe('new bytes');
        await expect(driver.stat('a')).rejects.toBeInstanceOf(PathNotFoundError);
      });

      // driver.ts move: "a reader sees the old bytes or the new, never a mix".
      it('lets a reader opened before a replacing move read one whole version', async () => {
        const oldBytes = Buffer.alloc(1024 * 1024, 0xaa);
        const newBytes = Buffer.alloc(1024 * 1024, 0xbb);
        await driver.putContent('target', oldBytes);
        await driver.putContent('incoming', newBytes);
        const reader = await driver.reader('target');
        await driver.move('incoming', 'target');
        const read = await readAll(reader);
        expect(Buffer.compare(read, oldBytes) === 0 || Buffer.compare(read, newBytes) === 0).toBe(true);
        expect(Buffer.compare(await driver.getContent('target'), newBytes)).toBe(0);
      });

      it('throws PathNotFoundError for a missing source and leaves the destination alone', async () => {
        await driver.putContent('dest', 'kept');
        const err = await driver.move('missing', 'dest').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PathNotFoundError);
        expect((err as PathNotFoundError).path).toBe('missing');
        expect((await driver.getContent('dest')).toString()).toBe('kept');
      });
    });

    describe('delete', () => {
      // driver.ts delete: "Removes a file or a whole folder".
      it('removes a file and leaves its siblings', async () => {
        await driver.putContent('d/one', '1');
        await driver.putContent('d/two', '2');
        await driver.delete('d/one');
        await expect(driver.stat('d/one')).rejects.toBeInstanceOf(PathNotFoundError);
        expect((await driver.getContent('d/two')).toString()).toBe('2');
        expect(await driver.list('d')).toEqual(['two']);
      });

      it('removes a whole folder tree', async () => {
        await driver.putContent('tree/a', 'a');
        await driver.putContent('tree/sub/b', 'b');
        await driver.putContent('tree/sub/deeper/c', 'c');
        await driver.putContent('other', 'o');
        await driver.delete('tree');
        await expect(driver.stat('tree')).rejects.toBeInstanceOf(PathNotFoundError);
        await expect(driver.stat('tree/sub/deeper/c')).rejects.toBeInstanceOf(PathNotFoundError);
        expect(await driver.list('tree')).toEqual([]);
        expect((await driver.getContent('other')).toString()).toBe('o');
      });

      it('does not treat a path as a prefix of its siblings', async () => {
        await driver.putContent('dir/ab', '1');
        await driver.putContent('dir/abc', '2');
        await driver.delete('dir/ab');
        expect((await driver.getContent('dir/abc')).toString()).toBe('2');
      });

      // driver.ts delete: "succeeds when nothing is there".
      it('succeeds when nothing is there', async () => {
        await expect(driver.delete('nothing/here')).resolves.toBeUndefined();
        await driver.delete('nothing/here');
      });
    });

    describe('list', () => {
      // driver.ts list: "Names of the direct children of a folder".
      it('lists the direct children, files and folders, by name', async () => {
        await driver.putContent('l/a', '1');
        await driver.putContent('l/b', '2');
        await driver.putContent('l/sub/c', '3');
        await driver.putContent('l/sub/deeper/d', '4');
        expect((await driver.list('l')).sort()).toEqual(['a', 'b', 'sub']);
        expect((await driver.list('l/sub')).sort()).toEqual(['c', 'deeper']);
      });

      // driver.ts list: "empty when the folder does not exist".
      it('is empty for a missing folder', async () => {
        expect(await driver.list('no/such/folder')).toEqual([]);
      });

      it('is empty for a folder emptied by deletes', async () => {
        await driver.putContent('e/x', '1');
        await driver.delete('e/x');
        expect(await driver.list('e')).toEqual([]);
      });
    });

    describe('checkWritable', () => {
      // driver.ts checkWritable: "resolves when it can … it leaves nothing behind".
      it('resolves on a store that can be written, and leaves nothing behind', async () => {
        await driver.checkWritable();
        await driver.checkWritable();
        expect(await driver.list('')).toEqual([]);
      });

      // driver.ts checkWritable: "throws PathNotFoundError('') when the root itself is gone … It
      // never makes the root".
      it('throws PathNotFoundError once the root is gone, without making it again; a write makes it again', async () => {
        await driver.putContent('kept/state', 'x');
        await wipe();
        const err = await driver.checkWritable().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PathNotFoundError);
        expect((err as PathNotFoundError).path).toBe('');
        await expect(driver.checkWritable()).rejects.toBeInstanceOf(PathNotFoundError);
        await driver.putContent('kept/state', 'y');
        await driver.checkWritable();
        expect(await driver.list('')).toEqual(['kept']);
      });
    });

    // driver.ts: "every write makes again the folders it needs, whatever it remembers having
    // made … never a PathNotFoundError unless what the call reads is what is missing". Each
    // test first writes through the operation itself, so a driver that remembers the folders
    // it made remembers these, and then loses everything behind the driver's back.
    describe('after everything is lost behind the driver\'s back', () => {
      it('every write makes its folders again (writer, for a new file and an append; createExclusive; createFolder; putContent), and reads of what went are PathNotFoundError', async () => {
        expect(await driver.createFolder('uploads/v')).toBe(true);
        await writeAll(await driver.writer('staging/one', { append: false }), ['1']);
        await writeAll(await driver.writer('uploads/u/data', { append: true }), ['1']);
        expect(await driver.createExclusive('uploads/u/lock', 'me')).toBe(true);
        await driver.putContent('state/file', 'x');
        await wipe();
        await expect(driver.stat('staging/one')).rejects.toBeInstanceOf(PathNotFoundError);
        await expect(driver.reader('staging/one')).rejects.toBeInstanceOf(PathNotFoundError);
        await expect(driver.getContent('state/file')).rejects.toBeInstanceOf(PathNotFoundError);
        expect(await driver.list('uploads/u')).toEqual([]);
        await writeAll(await driver.writer('staging/two', { append: false }), ['2']);
        await writeAll(await driver.writer('uploads/u/data', { append: true }), ['a']);
        await writeAll(await driver.writer('uploads/u/data', { append: true }), ['b']);
        expect(await driver.createExclusive('uploads/u/lock', 'me')).toBe(true);
        expect(await driver.createFolder('uploads/v')).toBe(true);
        await driver.putContent('state/file', 'y');
        expect((await driver.getContent('staging/two')).toString()).toBe('2');
        expect((await driver.getContent('uploads/u/data')).toString()).toBe('ab');
        expect((await driver.getContent('uploads/u/lock')).toString()).toBe('me');
        expect((await driver.getContent('state/file')).toString()).toBe('y');
      });

      // driver.ts move: "Creates the destination's parent folders. Throws PathNotFoundError
      // (naming source) only when the source is missing".
      it('move makes the destination\'s folders again, and is PathNotFoundError naming the source only when the source went', async () => {
        await driver.putContent('staging/one', '1');
        await driver.move('staging/one', 'blobs/ab/one');
        await driver.putContent('staging/two', '2');
        await wipe();
        const err = await driver.move('staging/two', 'blobs/ab/two').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PathNotFoundError);
        expect((err as PathNotFoundError).path).toBe('staging/two');
        await driver.putContent('staging/three', '3');
        await driver.move('staging/three', 'blobs/ab/three');
        expect((await driver.getContent('blobs/ab/three')).toString()).toBe('3');
        expect(await driver.list('staging')).toEqual([]);
      });
    });

    describe('paths escaping the root', () => {
      // driver.ts: "slash-separated paths relative to the driver's root"; a path that leaves it is refused.
      const escaping = ['../x', 'a/../../x', '../../../../../../../../tmp/x'];

      it.each(escaping)('refuses writes to %j', async (path) => {
        await expect(driver.putContent(path, 'x')).rejects.toThrow();
        await expect(driver.writer(path, { append: false })).rejects.toThrow();
        await expect(driver.writer(path, { append: true })).rejects.toThrow();
      });

      it.each(escaping)('refuses reads of %j with an error other than PathNotFoundError', async (path) => {
        const attempts: Array<() => Promise<unknown>> = [
          () => driver.stat(path),
          () => driver.getContent(path),
          () => driver.reader(path),
          () => driver.list(path),
        ];
        for (const attempt of attempts) {
          const err = await attempt().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(Error);
          expect(err).not.toBeInstanceOf(PathNotFoundError);
        }
      });

      it.each(escaping)('refuses delete, truncate and move involving %j', async (path) => {
        await driver.putContent('inside', 'x');
        await expect(driver.delete(path)).rejects.toThrow();
        await expect(driver.truncate(path, 0)).rejects.toThrow();
        await expect(driver.move('inside', path)).rejects.toThrow();
        await expect(driver.move(path, 'inside')).rejects.toThrow();
        expect((await driver.getContent('inside')).toString()).toBe('x');
      });
    });
  });
}

/** All of a stream's bytes. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** The first chunk a stream yields, leaving the rest unread (the stream stays open). */
async function readSome(stream: Readable): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    stream.once('error', reject);
    stream.once('readable', () => {
      const chunk = stream.read() as Buffer | null;
      stream.off('error', reject);
      resolve(chunk ?? Buffer.alloc(0));
    });
  });
}

/** Writes the chunks, ends the stream and waits for 'close' (when the contract says bytes are durable). */
async function writeAll(stream: Writable, chunks: Array<string | Uint8Array>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.once('close', () => resolve());
    for (const chunk of chunks) stream.write(chunk);
    stream.end();
  });
}

function allByteValues(): Buffer {
  return Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

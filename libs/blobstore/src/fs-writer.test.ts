/**
 * Reads of files written directly: a file the direct writer wrote is not in the page cache, so
 * its reads bypass the cache too until one has read it whole; that one clears the file's mark,
 * and the reads that follow go through the cache (fs-writer.ts, `copyFresh`).
 */
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FilesystemDriver } from './fs-driver.js';
import { fileIdentity } from './fs-writer.js';

// Sees every FileHandle the driver opens, with its flags, and may refuse an open before it
// happens, as a filesystem without some flag would.
const onOpen = vi.hoisted(() => ({
  hook: undefined as ((handle: FileHandle, file: string, flags: unknown) => void) | undefined,
  refuse: undefined as ((file: string, flags: unknown) => Error | undefined) | undefined,
}));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const open: typeof actual.open = async (...args) => {
    const refusal = onOpen.refuse?.(String(args[0]), args[1]);
    if (refusal) throw refusal;
    const handle = await actual.open(...args);
    onOpen.hook?.(handle, String(args[0]), args[1]);
    return handle;
  };
  return { ...actual, default: { ...actual, open }, open };
});

const mib = 1024 * 1024;
const FRESH_MARK = 0o1000;
// Linux's mask of the access mode in open flags; node:fs does not export it.
const O_ACCMODE = 0o3;
const isDirectRead = (flags: unknown) =>
  typeof flags === 'number' && (flags & fs.constants.O_DIRECT) !== 0 && (flags & O_ACCMODE) === fs.constants.O_RDONLY;

describe('FilesystemDriver reads of files written directly', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'meridian-fs-fresh-'));
  });

  afterEach(async () => {
    onOpen.hook = onOpen.refuse = undefined;
    await rm(root, { recursive: true, force: true });
  });

  /** Writes `size` random bytes to `name` through the driver's writer; returns them. */
  async function write(driver: FilesystemDriver, name: string, size: number): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(size);
    randomFillSync(bytes);
    const pieces = Array.from({ length: Math.ceil(size / 100_003) }, (_, i) => bytes.subarray(i * 100_003, (i + 1) * 100_003));
    await pipeline(Readable.from(pieces), await driver.writer(name, { append: false }));
    return bytes;
  }

  /** Copies `range` of `name` into memory, the way a pull does. */
  async function copy(driver: FilesystemDriver, name: string, range: { start: number; end: number }): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(Buffer.from(chunk));
        callback();
      },
    });
    await driver.copyTo(name, range, destination);
    return Buffer.concat(chunks);
  }

  /**
   * Counts the direct descriptors opened for reading from now on, the bytes read through them,
   * and the largest number of bytes one read asked for.
   */
  function watchDirectReads(): { opens: number; bytes: number; mostAtOnce: number; largestRead: number } {
    const seen = { opens: 0, bytes: 0, mostAtOnce: 0, largestRead: 0 };
    let reading = 0;
    onOpen.hook = (handle, _file, flags) => {
      if (!isDirectRead(flags)) return;
      seen.opens++;
      const read = handle.read.bind(handle) as (...args: unknown[]) => ReturnType<FileHandle['read']>;
      handle.read = (async (...args: unknown[]) => {
        // read(buffer, offset, length, position), as copyFresh calls it.
        seen.largestRead = Math.max(seen.largestRead, Number(args[2]));
        seen.mostAtOnce = Math.max(seen.mostAtOnce, ++reading);
        try {
          const result = await read(...args);
          seen.bytes += result.bytesRead;
          return result;
        } finally {
          reading--;
        }
      }) as FileHandle['read'];
    };
    return seen;
  }

  const marked = (name: string) => (fs.statSync(path.join(root, name)).mode & FRESH_MARK) !== 0;

  it('marks a file written directly, and no file written through the cache', async () => {
    await write(new FilesystemDriver(root), 'direct', 3 * mib + 5);
    await write(new FilesystemDriver(root), 'small', 100_000);
    await write(new FilesystemDriver(root, { directWriteSlices: 0 }), 'cached', 3 * mib);
    expect([marked('direct'), marked('small'), marked('cached')]).toEqual([true, false, false]);
  });

  it('reads a file written directly with O_DIRECT on its first whole copy, byte for byte, then through the cache', async () => {
    const driver = new FilesystemDriver(root);
    const bytes = await write(driver, 'blob', 9 * mib + 5);
    const seen = watchDirectReads();
    expect((await copy(driver, 'blob', { start: 0, end: bytes.length - 1 })).equals(bytes)).toBe(true);
    expect(seen.opens).toBe(1);
    expect(seen.bytes).toBe(bytes.length);
    // The disk has the next reads queued while a chunk is sent: three slices, two reads ahead.
    expect(seen.mostAtOnce).toBe(3);
    // In 4 MiB reads, not in the writers' 1 MiB slices: each read costs CPU of its own.
    expect(seen.largestRead).toBe(4 * mib);
    expect(marked('blob')).toBe(false);
    expect((await copy(driver, 'blob', { start: 0, end: bytes.length - 1 })).equals(bytes)).toBe(true);
    expect(seen.opens).toBe(1);
  });

  it('fails a fresh copy whose direct read comes back short before the end, rather than send bytes out of place', async () => {
    const driver = new FilesystemDriver(root);
    const bytes = await write(driver, 'blob', 9 * mib + 5);
    // The first read returns half of what it asked for, as a read of a file that shrank would;
    // the reads queued after it start where it should have ended.
    let first = true;
    onOpen.hook = (handle, _file, flags) => {
      if (!isDirectRead(flags)) return;
      const read = handle.read.bind(handle) as (...args: unknown[]) => ReturnType<FileHandle['read']>;
      handle.read = (async (...args: unknown[]) => {
        const result = await read(...args);
        if (!first) return result;
        first = false;
        return { ...result, bytesRead: Math.floor(result.bytesRead / 2) };
      }) as FileHandle['read'];
    };
    await expect(copy(driver, 'blob', { start: 0, end: bytes.length - 1 })).rejects.toThrow(/ended at/);
  });

  it('copies ranges of a fresh file exactly, whatever their alignment, and keeps the mark until a copy reaches the end', async () => {
    const driver = new FilesystemDriver(root);
    const bytes = await write(driver, 'blob', 8 * mib + 4097);
    const seen = watchDirectReads();
    const ranges = [
      [0, 0],
      [1, 4096],
      [4095, mib + 1],
      [mib - 1, 2 * mib + 3],
      [4 * mib - 1, 8 * mib + 3],
      [8 * mib + 4000, 8 * mib + 4095],
    ] as const;
    for (const [start, end] of ranges) {
      expect((await copy(driver, 'blob', { start, end })).equals(bytes.subarray(start, end + 1))).toBe(true);
    }
    expect(seen.opens).toBe(ranges.length);
    expect(marked('blob')).toBe(true);
    const tail = { start: 8 * mib + 1, end: bytes.length - 1 };
    expect((await copy(driver, 'blob', tail)).equals(bytes.subarray(tail.start))).toBe(true);
    expect(marked('blob')).toBe(false);
  });

  it('a copy that one slice holds takes one, so as many small fresh blobs as slices are read directly at once', async () => {
    const driver = new FilesystemDriver(root, { directReadSlices: 2 });
    const blobs = [await write(driver, 'one', 2 * mib), await write(driver, 'two', 2 * mib)];
    const seen = watchDirectReads();
    const copies = await Promise.all(['one', 'two'].map((name, i) => copy(driver, name, { start: 0, end: blobs[i]!.length - 1 })));
    expect(copies.map((bytes, i) => bytes.equals(blobs[i]!))).toEqual([true, true]);
    expect(seen.opens).toBe(2);
    expect([marked('one'), marked('two')]).toEqual([false, false]);
  });

  it('a copy whose destination closes half-way gives its slices back and leaves the mark', async () => {
    // Two slices: a copy that kept one would leave the next without a pair, reading through the cache.
    const driver = new FilesystemDriver(root, { directReadSlices: 2 });
    const bytes = await write(driver, 'blob', 12 * mib);
    const seen = watchDirectReads();
    let writes = 0;
    const leaving = new Writable({
      write(_chunk, _encoding, callback) {
        if (++writes === 2) {
          leaving.destroy();
          return;
        }
        callback();
      },
    });
    await expect(driver.copyTo('blob', { start: 0, end: bytes.length - 1 }, leaving)).rejects.toThrow();
    expect(marked('blob')).toBe(true);
    expect((await copy(driver, 'blob', { start: 0, end: bytes.length - 1 })).equals(bytes)).toBe(true);
    expect(seen.opens).toBe(2);
    expect(marked('blob')).toBe(false);
  });

  // tmpfs and ext4 have O_DIRECT; the refusal here is the open mock's.
  it('on a filesystem refusing a direct open for reading, copies through the cache, intact, and keeps the mark', async () => {
    const driver = new FilesystemDriver(root);
    const bytes = await write(driver, 'blob', 3 * mib);
    onOpen.refuse = (_file, flags) => (isDirectRead(flags) ? Object.assign(new Error('EINVAL'), { code: 'EINVAL' }) : undefined);
    expect((await copy(driver, 'blob', { start: 0, end: bytes.length - 1 })).equals(bytes)).toBe(true);
    onOpen.refuse = undefined;
    // A reader that cannot read directly leaves the mark: later readers on another filesystem setup
    // (another gateway) may. This one has stopped trying.
    expect(marked('blob')).toBe(true);
    const seen = watchDirectReads();
    expect((await copy(driver, 'blob', { start: 0, end: bytes.length - 1 })).equals(bytes)).toBe(true);
    expect(seen.opens).toBe(0);
  });
});

describe('fileIdentity (driver.ts FileInfo.identity: "what tells this file from another that later took its name")', () => {
  it('is none where the filesystem keeps no birth time, whose inode numbers are reused at once', () => {
    expect(fileIdentity({ dev: 2049, ino: 12, birthtimeMs: 0 })).toBeUndefined();
    expect(fileIdentity({ dev: 2049, ino: 12, birthtimeMs: 1796302749577.0393 })).toBe('2049:12:1796302749577.0393');
  });
});

/**
 * FilesystemDriver: the shared StorageDriver suite (STYLE.md §7) in a temporary directory, then
 * what only a filesystem can show: nothing is ever written, read or removed outside the root.
 */
import fs from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { describeStorageDriverSuite, readAll } from './driver-suite.js';
import { FilesystemDriver } from './fs-driver.js';

// Records every FileHandle the driver opens, so a test can follow a reader's descriptor.
const opened = vi.hoisted(() => [] as FileHandle[]);
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const open: typeof actual.open = async (...args) => {
    const handle = await actual.open(...args);
    opened.push(handle);
    return handle;
  };
  return { ...actual, default: { ...actual, open }, open };
});

describeStorageDriverSuite('filesystem', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'meridian-fs-driver-'));
  return {
    driver: new FilesystemDriver(root),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

describe('FilesystemDriver outside the shared suite', () => {
  let base: string;
  let root: string;
  let driver: FilesystemDriver;

  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'meridian-fs-driver-escape-'));
    root = path.join(base, 'root');
    await mkdir(root);
    await writeFile(path.join(base, 'outside.txt'), 'precious');
    driver = new FilesystemDriver(root);
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('names itself "filesystem"', () => {
    expect(driver.name).toBe('filesystem');
  });

  it('writes files under the root at the relative path', async () => {
    await driver.putContent('a/b/c', 'x');
    expect((await stat(path.join(root, 'a', 'b', 'c'))).size).toBe(1);
  });

  it('never removes a file outside the root', async () => {
    await expect(driver.delete('../outside.txt')).rejects.toThrow(/escapes the storage root/);
    await expect(driver.delete(path.join(base, 'outside.txt'))).rejects.toThrow(/escapes the storage root/);
    await expect(driver.delete('..')).rejects.toThrow(/escapes the storage root/);
    expect((await stat(path.join(base, 'outside.txt'))).size).toBe('precious'.length);
  });

  it('never creates, truncates or replaces a file outside the root', async () => {
    await driver.putContent('inside', 'in');
    await expect(driver.putContent('../created.txt', 'x')).rejects.toThrow(/escapes the storage root/);
    await expect(driver.writer('../created.txt', { append: false })).rejects.toThrow(/escapes the storage root/);
    await expect(driver.truncate('../outside.txt', 0)).rejects.toThrow(/escapes the storage root/);
    await expect(driver.move('inside', '../outside.txt')).rejects.toThrow(/escapes the storage root/);
    await expect(driver.putContent(path.join(base, 'absolute.txt'), 'x')).rejects.toThrow(/escapes the storage root/);
    expect((await readdir(base)).sort()).toEqual(['outside.txt', 'root']);
    expect((await stat(path.join(base, 'outside.txt'))).size).toBe('precious'.length);
    expect((await driver.getContent('inside')).toString()).toBe('in');
  });

  it('refuses a sibling folder whose name starts with the root name', async () => {
    await mkdir(path.join(base, 'root-sibling'));
    await writeFile(path.join(base, 'root-sibling', 'f'), 'x');
    await expect(driver.getContent('../root-sibling/f')).rejects.toThrow(/escapes the storage root/);
    await expect(driver.list('../root-sibling')).rejects.toThrow(/escapes the storage root/);
  });

  it('accepts dot segments that stay inside the root', async () => {
    await driver.putContent('a/../b', 'x');
    expect((await driver.getContent('b')).toString()).toBe('x');
  });

  it('leaves no temporary files behind putContent', async () => {
    for (let i = 0; i < 5; i++) await driver.putContent('state/file', `v${i}`);
    expect(await readdir(path.join(root, 'state'))).toEqual(['file']);
  });

  // A file descriptor closed twice: between the two close(2) calls another open() may be given
  // the same number (POSIX hands out the lowest free one), and the second close then shuts an
  // unrelated file: a blob being served to another client, a Postgres socket. Here the "other"
  // file is opened at the earliest moment the number is free, before the reader emits 'close'.
  it('closes a reader\'s file descriptor only once, so a file opened meanwhile stays open', async () => {
    await driver.putContent('blob', Buffer.alloc(4096, 7));
    const victimPath = path.join(base, 'outside.txt');
    opened.length = 0;
    const reader = await driver.reader('blob');
    const handle = opened.at(-1);
    expect(handle).toBeDefined();
    const fdNumber = handle!.fd;
    const handleCloses: Promise<unknown>[] = [];
    const closeHandle = handle!.close.bind(handle);
    handle!.close = () => {
      const closing = closeHandle();
      handleCloses.push(closing.catch(() => undefined));
      return closing;
    };
    let victimFd = -1;
    const takeNumber = () => {
      if (victimFd === -1) victimFd = openAs(victimPath, fdNumber);
    };
    const originalFsClose = fs.close;
    const fsClose = vi.spyOn(fs, 'close').mockImplementation(((fd: number, callback?: fs.NoParamCallback) => {
      originalFsClose(fd, (err) => {
        if (!err && fd === fdNumber) takeNumber();
        callback?.(err);
      });
    }) as typeof fs.close);
    try {
      const readerClosed = new Promise<void>((resolve) => reader.once('close', () => resolve()));
      expect((await readAll(reader)).length).toBe(4096);
      await readerClosed;
      takeNumber();
      await Promise.all(handleCloses);
    } finally {
      fsClose.mockRestore();
    }
    expect(victimFd).toBe(fdNumber);
    try {
      expect(() => fs.fstatSync(victimFd)).not.toThrow();
      expect(fs.readFileSync(victimFd, 'utf8')).toBe('precious');
    } finally {
      try {
        fs.closeSync(victimFd);
      } catch {
        // already closed by the bug under test
      }
    }
  });
});

/** Opens `file` until the descriptor number `wanted` comes back (POSIX: lowest free number first). */
function openAs(file: string, wanted: number): number {
  const extras: number[] = [];
  try {
    for (let i = 0; i < 10_000; i++) {
      const fd = fs.openSync(file, 'r');
      if (fd === wanted) return fd;
      extras.push(fd);
      if (fd > wanted) return -1;
    }
    return -1;
  } finally {
    for (const fd of extras) fs.closeSync(fd);
  }
}

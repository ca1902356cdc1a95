import { close, closeSync, createReadStream, existsSync, fdatasync, fsync, linkSync, lstatSync, mkdirSync, openSync, renameSync, statSync, statfsSync, unlinkSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { link, mkdir, open, rename, rm, rmdir, stat, readdir, truncate, readFile, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { PathNotFoundError, type FileInfo, type MoveOptions, type StorageDriver } from './driver.js';
import { DIRECT_READ_BYTES, DirectStagingPool, FileWriter, fileIdentity, syncDirectory } from './fs-writer.js';

/** The folders a sha256 blob's name lands in: blobs/sha256/<first two hex digits>. */
const SHA256_PREFIXES = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Read buffer per stream: large enough that a pull is not bound by syscalls, small enough to be constant. */
const READ_CHUNK_BYTES = 1024 * 1024;
/**
 * Aligned 1 MiB slices for direct writes (fs-writer.ts), two per large write at a time: 32 MiB
 * in all, taken from memory only once a write needs them.
 */
const DEFAULT_DIRECT_WRITE_SLICES = 32;
/**
 * Aligned slices of DIRECT_READ_BYTES for the first reads of blobs written directly
 * (fs-writer.ts, `copyFresh`), up to three per read: two fresh pulls at a time read directly with
 * three each, a third with two; 32 MiB in all, taken from memory only once such a read needs them.
 */
const DEFAULT_DIRECT_READ_SLICES = 8;

/**
 * The calls that only look at a name or change names in a folder (an empty file or folder made
 * is a new name), which an upload session makes several of per request (its placing, claim,
 * release and close; a manifest's look at each blob it names). Through the thread pool a rename cost the process about 80 µs of CPU and a
 * stat 40 on the two-core bench machine, against under 10 on the event loop: the hand-over and
 * the wake-ups, not the call. On a local filesystem such a call changes the folder in memory
 * (the journal writes it later) and does not wait for the disk, so it runs on the event loop
 * there; a network filesystem may wait a round trip for each, so it keeps the thread pool.
 * A sync's open and close (of a file already written, or a folder) are such calls too; the
 * sync itself, reads, writes (and the opens for them) and rmdir keep the thread pool everywhere:
 * they may wait, and rmdir was seen to wait for the journal.
 */
interface NameCalls {
  stat(full: string): Promise<Stats>;
  rename(from: string, to: string): Promise<void>;
  link(from: string, to: string): Promise<void>;
  unlink(full: string): Promise<void>;
  mkdir(full: string): Promise<void>;
  /** Creates an empty file where nothing is (EEXIST otherwise). */
  createEmpty(full: string): Promise<void>;
  /** Flushes a file's bytes ('data': fdatasync) or a folder's names ('all': fsync) to stable storage. */
  sync(full: string, what: 'data' | 'all'): Promise<void>;
}

const NAME_CALLS_IN_THREAD_POOL: NameCalls = {
  stat,
  rename,
  link,
  unlink,
  mkdir: async (full) => void (await mkdir(full)),
  createEmpty: async (full) => (await open(full, 'wx')).close(),
  sync: async (full, what) => {
    const handle = await open(full, 'r');
    try {
      await (what === 'data' ? handle.datasync() : handle.sync());
    } finally {
      await handle.close();
    }
  },
};

const fdatasyncInThreadPool = promisify(fdatasync);
const fsyncInThreadPool = promisify(fsync);
const closeInThreadPool = promisify(close);

/**
 * The largest file unlinked on the event loop. Removing a file's last name frees its blocks in
 * the calling thread: measured on this ext4, 0.02 ms for an empty file, 0.4 for 1 MiB, 5 for
 * 16 MiB, 80 for 256 MiB and 300 for 1 GiB, a stall of every request of the process were it
 * the event loop. Larger files, and a rename onto an existing file (which frees that one the
 * same way), go through the thread pool.
 */
const EVENT_LOOP_UNLINK_MAX_BYTES = 1024 * 1024;

// async, so a failure is a rejection, as the thread pool's calls give it, with the same error.
const NAME_CALLS_ON_EVENT_LOOP: NameCalls = {
  stat: async (full) => statSync(full),
  rename: async (from, to) => (existsSync(to) ? NAME_CALLS_IN_THREAD_POOL.rename(from, to) : renameSync(from, to)),
  link: async (from, to) => linkSync(from, to),
  unlink: async (full) => {
    const info = lstatSync(full);
    // A file with another name (a link-then-unlink's source) frees nothing.
    if (info.nlink > 1 || info.size <= EVENT_LOOP_UNLINK_MAX_BYTES) unlinkSync(full);
    else await NAME_CALLS_IN_THREAD_POOL.unlink(full);
  },
  mkdir: async (full) => mkdirSync(full),
  createEmpty: async (full) => closeSync(openSync(full, 'wx')),
  sync: async (full, what) => {
    const fd = openSync(full, 'r');
    try {
      await (what === 'data' ? fdatasyncInThreadPool(fd) : fsyncInThreadPool(fd));
    } finally {
      // A file's name may have gone meanwhile (replaced by another gateway's rename): this
      // descriptor is then its last reference, and closing it frees the file's blocks in the
      // closing thread, a stall of tens of milliseconds for a large blob. A folder frees nothing.
      if (what === 'data') await closeInThreadPool(fd);
      else closeSync(fd);
    }
  },
};

/** statfs(2) types of local filesystems: ext2/3/4, xfs, btrfs, tmpfs, overlayfs, zfs, f2fs. */
const LOCAL_FILESYSTEM_TYPES = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630, 0x2fc12fc1, 0xf2f52010]);

/** Where `root` (or the nearest folder above it that exists) is on a local filesystem: on the event loop. */
function nameCallsFor(root: string): NameCalls {
  for (let at = root; ; at = path.dirname(at)) {
    try {
      return LOCAL_FILESYSTEM_TYPES.has(statfsSync(at).type) ? NAME_CALLS_ON_EVENT_LOOP : NAME_CALLS_IN_THREAD_POOL;
    } catch (err) {
      if (!isNotFound(err) || path.dirname(at) === at) return NAME_CALLS_IN_THREAD_POOL;
    }
  }
}

/**
 * The local-filesystem driver. Atomic moves are rename(2) within one filesystem; durability is
 * fsync of the file on close (`flush`) and of the parent folder after a rename, so a crash never
 * leaves a committed name pointing at missing bytes.
 *
 * Writes try first and make the folders they need only when the system says one is missing
 * (ENOENT), then try again: the common write costs no mkdir, and a folder that vanished behind
 * the driver's back (the data directory deleted, a lost volume) is simply made again.
 */
export class FilesystemDriver implements StorageDriver {
  readonly name = 'filesystem';
  private readonly root: string;
  private readonly buffers = new BufferFreeList(READ_CHUNK_BYTES, 32);

  private readonly directStaging: DirectStagingPool;
  private readonly directReads: DirectStagingPool;
  private readonly nameCalls: NameCalls;

  /**
   * Large writes bypass the page cache (fs-writer.ts) where the filesystem allows it; on one
   * that does not, they go through it, and `onDirectWritesOff` hears why, once.
   * `directWriteSlices` bounds the aligned memory they gather bytes in (1 MiB slices, two per
   * write at a time); 0 turns direct writes off. `directReadSlices` bounds the aligned memory
   * the first reads of such files read into (4 MiB slices, up to three per read at a time); 0
   * reads them through the cache. `nameCalls` says where stat, rename, link and unlink run (see
   * NameCalls); by default on the event loop where the root's filesystem is local.
   */
  constructor(
    root: string,
    options: {
      directWriteSlices?: number;
      directReadSlices?: number;
      onDirectWritesOff?: (reason: string) => void;
      nameCalls?: 'event-loop' | 'thread-pool';
    } = {},
  ) {
    this.root = path.resolve(root);
    this.nameCalls =
      options.nameCalls === undefined ? nameCallsFor(this.root) : options.nameCalls === 'event-loop' ? NAME_CALLS_ON_EVENT_LOOP : NAME_CALLS_IN_THREAD_POOL;
    this.directStaging = new DirectStagingPool(options.directWriteSlices ?? DEFAULT_DIRECT_WRITE_SLICES, options.onDirectWritesOff);
    this.directReads = new DirectStagingPool(options.directReadSlices ?? DEFAULT_DIRECT_READ_SLICES, undefined, DIRECT_READ_BYTES);
  }

  async stat(relative: string): Promise<FileInfo> {
    try {
      const info = await this.nameCalls.stat(this.resolve(relative));
      const identity = fileIdentity(info);
      return { size: info.size, modifiedAt: info.mtime, isDirectory: info.isDirectory(), links: info.nlink, ...(identity ? { identity } : {}) };
    } catch (err) {
      throw this.notFound(err, relative);
    }
  }

  async reader(relative: string, range?: { start: number; end?: number }): Promise<Readable> {
    const full = this.resolve(relative);
    // Open first so a missing file is an error here, not an 'error' event after headers are sent.
    let handle;
    try {
      handle = await open(full, 'r');
    } catch (err) {
      throw this.notFound(err, relative);
    }
    // The stream owns the FileHandle and closes it exactly once (autoClose), at end or destroy.
    return createReadStream('', {
      fd: handle,
      start: range?.start ?? 0,
      ...(range?.end !== undefined ? { end: range.end } : {}),
      highWaterMark: READ_CHUNK_BYTES,
      autoClose: true,
    });
  }

  async copyTo(relative: string, range: { start: number; end: number }, destination: Writable): Promise<void> {
    let handle;
    try {
      handle = await open(this.resolve(relative), 'r');
    } catch (err) {
      throw this.notFound(err, relative);
    }
    // Two buffers: one is read into while the other is being written. They come from a small
    // free list, so a busy pull path allocates (and collects) no megabyte buffers per request.
    const buffers: Buffer[] = [];
    try {
      // Written directly and not read since, so not in the page cache: read directly too (fs-writer.ts).
      if (await this.directReads.copyFresh(handle, range, (chunk) => writeFully(destination, chunk))) return;
      const total = range.end - range.start + 1;
      buffers.push(this.buffers.acquire());
      if (total > READ_CHUNK_BYTES) buffers.push(this.buffers.acquire());
      let position = range.start;
      let turn = 0;
      let inFlight: Promise<void> = Promise.resolve();
      while (position <= range.end) {
        const buffer = buffers[(turn ^= 1) % buffers.length]!;
        const wanted = Math.min(buffer.length, range.end - position + 1);
        const { bytesRead } = await handle.read(buffer, 0, wanted, position);
        if (bytesRead === 0) throw new Error(`${relative} ended at ${position}, before ${range.end + 1}`);
        await inFlight;
        position += bytesRead;
        inFlight = writeFully(destination, bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
        // Awaited on the next turn; until then a destination that closes must not count as an
        // unhandled rejection.
        inFlight.catch(() => undefined);
      }
      await inFlight;
      for (const buffer of buffers) this.buffers.release(buffer);
    } finally {
      // On failure the buffers are not returned: a write may still hold one.
      await handle.close();
    }
  }

  async writer(relative: string, options: { append: boolean; durable?: boolean }): Promise<FileWriter> {
    const full = this.resolve(relative);
    return new FolderMakingWriter(full, options.append, options.durable ?? true, this.directStaging);
  }

  async checkWritable(): Promise<void> {
    // Named uniquely: gateways of a region share the root, and pids repeat across containers.
    const probe = path.join(this.root, `.write-probe-${randomUUID()}`);
    try {
      const handle = await open(probe, 'wx');
      try {
        await handle.writeFile('probe');
      } finally {
        await handle.close();
      }
    } catch (err) {
      // Only the root can be missing here: the probe's name was new.
      throw this.notFound(err, '');
    } finally {
      await rm(probe, { force: true }).catch(() => undefined);
    }
  }

  locate(relative: string): string {
    return this.resolve(relative);
  }

  /**
   * Makes blobs/sha256/00 … ff, then syncs the folder above each one made, deepest first. Without
   * it, the first writer under a prefix made the folder, and a second writer whose rename into
   * it succeeded synced only that folder and could answer 201 before the first had synced the
   * folder's own name in blobs/sha256: a crash then could lose the second blob, which Postgres
   * calls present. A folder that vanishes later (the data directory deleted) is made again by
   * `move`, as before. sha512 blobs, rare, keep that way.
   */
  async prepare(): Promise<void> {
    const made = new Set<string>();
    for (const prefix of SHA256_PREFIXES) {
      for (const folder of await makeFolder(path.join(this.root, 'blobs', 'sha256', prefix))) made.add(folder);
    }
    const above = [...new Set([...made].map((folder) => path.dirname(folder)))].sort((a, b) => b.length - a.length);
    for (const folder of above) await syncDirectory(folder);
  }

  async describeWrites(): Promise<string> {
    await mkdir(this.root, { recursive: true }).catch(() => undefined);
    // Named by process, so the gateways of a region starting together do not share one.
    const probe = await this.directStaging.probe(path.join(this.root, `.direct-write-probe-${process.pid}`));
    if (probe.writes === 'direct') return 'direct (O_DIRECT from aligned 1 MiB slices; small blobs through the page cache)';
    if (probe.writes === 'cached') return `through the page cache: ${probe.reason}`;
    return `direct if the filesystem allows it; not known: ${probe.reason}`;
  }

  async createExclusive(relative: string, content?: string): Promise<boolean> {
    const full = this.resolve(relative);
    for (let attempt = 0; ; attempt++) {
      try {
        if (!content) {
          await this.nameCalls.createEmpty(full);
          return true;
        }
        const handle = await open(full, 'wx');
        try {
          await handle.writeFile(content);
        } finally {
          await handle.close();
        }
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        // The folder is made only when missing: the common case costs one open.
        if (code !== 'ENOENT' || attempt > 0) throw err;
        await makeFolder(path.dirname(full));
      }
    }
  }

  async createFolder(relative: string): Promise<boolean> {
    const full = this.resolve(relative);
    try {
      await this.nameCalls.mkdir(full);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'ENOENT') throw err;
    }
    // The folder above is missing (the first session, or the data directory deleted).
    const made = await makeFolder(full);
    return made[0] === full;
  }

  async touch(relative: string): Promise<void> {
    const now = new Date();
    try {
      await utimes(this.resolve(relative), now, now);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async truncate(relative: string, size: number): Promise<void> {
    try {
      await truncate(this.resolve(relative), size);
    } catch (err) {
      throw this.notFound(err, relative);
    }
  }

  async putContent(relative: string, content: Uint8Array | string): Promise<void> {
    const full = this.resolve(relative);
    const made = await makeFolder(path.dirname(full));
    const temporary = `${full}.${randomUUID()}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, full);
    await syncDirectory(path.dirname(full));
    // As in `move`: a folder made here is durable once its name in the one above is.
    for (const folder of made) await syncDirectory(path.dirname(folder));
  }

  async getContent(relative: string): Promise<Buffer> {
    try {
      return await readFile(this.resolve(relative));
    } catch (err) {
      throw this.notFound(err, relative);
    }
  }

  async move(source: string, destination: string, options: MoveOptions = {}): Promise<void> {
    const durable = options.durable ?? true;
    const from = this.resolve(source);
    const to = this.resolve(destination);
    // The check is called from a promise: one that throws at once then fails the move as one
    // that rejects does, with the flush already started still awaited, its failure heard.
    if (options.flush) await Promise.all([flushFile(this.nameCalls, from, source), Promise.resolve().then(options.whileFlushing)]);
    else await options.whileFlushing?.();
    // rename(2) replaces whatever is at `to`; link(2) refuses (EEXIST), atomically, and the
    // source's name then goes. Node has no renameat2(RENAME_NOREPLACE).
    const calls = this.nameCalls;
    const place = options.replace === false ? (a: string, b: string) => linkThenUnlink(calls, a, b) : calls.rename;
    try {
      await place(from, to);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // ENOENT says a folder on either side is missing: only a missing source is the caller's.
      if (!(await exists(calls, from))) throw new PathNotFoundError(source);
      const made = await makeFolder(path.dirname(to));
      try {
        await place(from, to);
      } catch (again) {
        if (isNotFound(again) && !(await exists(calls, from))) throw new PathNotFoundError(source);
        throw again;
      }
      if (!durable) return;
      await calls.sync(path.dirname(to), 'all');
      // A folder made for the move is only as durable as its name in the folder above: synced
      // too, from the deepest up, or a crash could lose a blob's folder (blobs/sha256/ab) and
      // with it the blob, after its 201. Once per folder ever made: the common move makes none.
      for (const folder of made) await calls.sync(path.dirname(folder), 'all');
      return;
    }
    if (durable) await calls.sync(path.dirname(to), 'all');
  }

  async delete(relative: string): Promise<void> {
    const full = this.resolve(relative);
    if (full === this.root) throw new Error('refusing to delete the storage root');
    // Most deletes are of one file (a session's digest note, a failed first chunk): unlink is
    // one call, where rm looks at the path twice first. A folder (EISDIR) goes through rm.
    try {
      await this.nameCalls.unlink(full);
      return;
    } catch (err) {
      if (isNotFound(err)) return;
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'EPERM') throw err;
    }
    await rm(full, { recursive: true, force: true });
  }

  async removeEmptyFolder(relative: string): Promise<void> {
    const full = this.resolve(relative);
    if (full === this.root) return;
    try {
      await rmdir(full);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && !isNotFound(err)) throw err;
    }
  }

  async list(relative: string): Promise<string[]> {
    try {
      return await readdir(this.resolve(relative));
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  /** Paths are built by paths.ts; this check is the last line against one escaping the root. */
  private resolve(relative: string): string {
    const full = path.resolve(this.root, relative);
    if (full !== this.root && !full.startsWith(this.root + path.sep)) {
      throw new Error(`path escapes the storage root: ${relative}`);
    }
    return full;
  }

  private notFound(err: unknown, relative: string): unknown {
    return isNotFound(err) ? new PathNotFoundError(relative) : err;
  }
}

/**
 * A FileWriter that, when its file cannot be opened because its folder is missing, makes the
 * folder and opens it again: the first write into a new folder, or into one that vanished.
 */
class FolderMakingWriter extends FileWriter {
  constructor(
    private readonly file: string,
    append: boolean,
    durable: boolean,
    staging: DirectStagingPool,
  ) {
    super(file, append, durable, staging);
  }

  override _construct(callback: (error?: Error | null) => void): void {
    super._construct((err) => {
      if (!isNotFound(err)) return callback(err);
      makeFolder(path.dirname(this.file)).then(() => super._construct(callback), callback);
    });
  }
}

/**
 * Makes `folder` and whatever is missing above it. Unlike `mkdir(…, { recursive: true })`,
 * which answers ENOENT for a parent it could not make whatever the reason (a read-only
 * filesystem, say), a failure names its real cause (EROFS, EACCES, ENOSPC) and the folder it hit.
 * Returns the folders this call made, deepest first (for a caller that must make them durable).
 */
async function makeFolder(folder: string): Promise<string[]> {
  try {
    await mkdir(folder);
    return [folder];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EEXIST: there already, or made meanwhile by another writer.
    if (code === 'EEXIST') return [];
    if (code !== 'ENOENT' || path.dirname(folder) === folder) throw err;
    const above = await makeFolder(path.dirname(folder));
    const made = await mkdir(folder).then(
      () => true,
      (again: NodeJS.ErrnoException) => {
        if (again.code !== 'EEXIST') throw again;
        return false;
      },
    );
    return made ? [folder, ...above] : above;
  }
}

async function exists(calls: NameCalls, file: string): Promise<boolean> {
  try {
    await calls.stat(file);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Reusable read buffers of one size; at most `keep` are held while idle. */
class BufferFreeList {
  private readonly free: Buffer[] = [];

  constructor(
    private readonly size: number,
    private readonly keep: number,
  ) {}

  acquire(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  release(buffer: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buffer);
  }
}

/** Resolves once `destination` has handed `chunk` on (its write callback), so the buffer may be reused. */
function writeFully(destination: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onClose = () => reject(Object.assign(new Error('destination closed early'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    if (destination.destroyed) return onClose();
    destination.once('close', onClose);
    destination.write(chunk, (err) => {
      destination.off('close', onClose);
      if (err) reject(err);
      else resolve();
    });
  });
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Moves file `from` to `to` only if nothing is at `to`: EEXIST otherwise, both left alone. Where
 * the filesystem has no hard links (EPERM, ENOTSUP: some FUSE and SMB mounts) it looks first and
 * renames, which a file put there between the look and the rename would not survive.
 */
async function linkThenUnlink(calls: NameCalls, from: string, to: string): Promise<void> {
  try {
    await calls.link(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    if (await exists(calls, to)) throw Object.assign(new Error(`EEXIST: file already exists, rename '${from}' -> '${to}'`), { code: 'EEXIST', path: to });
    await calls.rename(from, to);
    return;
  }
  await calls.unlink(from);
}

/** Flushes a file's bytes to stable storage (fdatasync); PathNotFoundError when it is missing. */
async function flushFile(calls: NameCalls, full: string, relative: string): Promise<void> {
  try {
    await calls.sync(full, 'data');
  } catch (err) {
    if (isNotFound(err)) throw new PathNotFoundError(relative);
    throw err;
  }
}

import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, rmdir, stat, readdir, truncate, readFile, utimes, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { PathNotFoundError, type FileInfo, type StorageDriver } from './driver.js';

/** Read buffer per stream: large enough that a pull is not bound by syscalls, small enough to be constant. */
const READ_CHUNK_BYTES = 1024 * 1024;
/** Bytes a writer buffers before it applies backpressure. */
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * A durable writer starts writing its dirty pages back once this many bytes have arrived since
 * the last time, while more keep arriving, so the fsync on close waits for at most about this
 * much instead of for the whole blob.
 */
const WRITEBACK_BYTES = 32 * 1024 * 1024;

/**
 * The local-filesystem driver. Atomic moves are rename(2) within one filesystem; durability is
 * fsync of the file on close (`flush`) and of the parent folder after a rename, so a crash never
 * leaves a committed name pointing at missing bytes.
 */
export class FilesystemDriver implements StorageDriver {
  readonly name = 'filesystem';
  private readonly root: string;
  private readonly buffers = new BufferFreeList(READ_CHUNK_BYTES, 32);
  /**
   * Folders known to exist, so the hot paths skip a mkdir per write. Forgotten when anything
   * under them is deleted; bounded, since blobs/ holds only a few hundred folders.
   */
  private readonly knownFolders = new Set<string>();

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async stat(relative: string): Promise<FileInfo> {
    try {
      const info = await stat(this.resolve(relative));
      return { size: info.size, modifiedAt: info.mtime, isDirectory: info.isDirectory() };
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

  async writer(relative: string, options: { append: boolean; durable?: boolean }): Promise<Writable> {
    const full = this.resolve(relative);
    await this.ensureFolder(path.dirname(full));
    return new FileWriter(full, options.append ? 'a' : 'w', options.durable ?? true);
  }

  async createExclusive(relative: string, content?: string): Promise<boolean> {
    const full = this.resolve(relative);
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(full, 'wx');
        try {
          if (content) await handle.writeFile(content);
        } finally {
          await handle.close();
        }
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        // The folder is made only when missing: the common case costs one open.
        if (code !== 'ENOENT' || attempt > 0) throw err;
        await mkdir(path.dirname(full), { recursive: true });
      }
    }
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
    await mkdir(path.dirname(full), { recursive: true });
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
  }

  async getContent(relative: string): Promise<Buffer> {
    try {
      return await readFile(this.resolve(relative));
    } catch (err) {
      throw this.notFound(err, relative);
    }
  }

  async move(source: string, destination: string): Promise<void> {
    const to = this.resolve(destination);
    await this.ensureFolder(path.dirname(to));
    try {
      await rename(this.resolve(source), to);
    } catch (err) {
      throw this.notFound(err, source);
    }
    await syncDirectory(path.dirname(to));
  }

  async delete(relative: string): Promise<void> {
    const full = this.resolve(relative);
    if (full === this.root) throw new Error('refusing to delete the storage root');
    for (const folder of this.knownFolders) {
      if (folder === full || folder.startsWith(full + path.sep)) this.knownFolders.delete(folder);
    }
    await rm(full, { recursive: true, force: true });
  }

  async removeEmptyFolder(relative: string): Promise<void> {
    const full = this.resolve(relative);
    if (full === this.root) return;
    try {
      await rmdir(full);
      this.knownFolders.delete(full);
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

  private async ensureFolder(folder: string): Promise<void> {
    if (this.knownFolders.has(folder)) return;
    await mkdir(folder, { recursive: true });
    if (this.knownFolders.size >= 4096) this.knownFolders.clear();
    this.knownFolders.add(folder);
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
 * A file written through one FileHandle, several received chunks per writev. Unlike
 * fs.WriteStream with `flush`, which leaves a whole blob dirty in the page cache until one
 * fsync at the end, a durable writer has the kernel write back every WRITEBACK_BYTES in the
 * background (fdatasync, off the event loop) while the next bytes are received and hashed: a
 * 256 MiB push then waits at close for its last few MiB to reach the disk, not all 256.
 */
class FileWriter extends Writable {
  private handle: FileHandle | undefined;
  private bytesSinceWriteback = 0;
  private writeback: Promise<unknown> | undefined;
  private writebackError: Error | undefined;
  /** Whether this writer created its file (a durable append then makes the new name durable). */
  private created = false;

  constructor(
    private readonly path: string,
    private readonly flags: 'a' | 'w',
    private readonly durable: boolean,
  ) {
    // A deep buffer lets the chunks received meanwhile go down in one writev, instead of the
    // socket pausing for every 16 KiB the default allows.
    super({ highWaterMark: WRITE_BUFFER_BYTES });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.openFile().then(
      (handle) => {
        this.handle = handle;
        callback();
      },
      callback,
    );
  }

  private async openFile(): Promise<FileHandle> {
    if (this.flags !== 'a' || !this.durable) return open(this.path, this.flags);
    try {
      const handle = await open(this.path, 'ax');
      this.created = true;
      return handle;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return open(this.path, 'a');
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((entry) => entry.chunk)).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    (async () => {
      await this.writeback;
      if (this.writebackError) throw this.writebackError;
      if (this.durable) await this.handle!.sync();
      // A file appended to in place (an upload session's first chunk) has no rename to commit
      // its name, so its folder, and that folder's entry in its own parent (the session's
      // folder is as new as the file), are synced here; otherwise a crash could lose a chunk
      // that was acknowledged. A file written whole ('w') is renamed into place by move(),
      // which syncs its destination.
      if (this.created) {
        const folder = path.dirname(this.path);
        await syncDirectory(folder);
        await syncDirectory(path.dirname(folder));
      }
    })().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = undefined;
    (async () => {
      // A writeback still running holds the descriptor; it is closed once that is done.
      await this.writeback;
      await handle?.close();
    })().then(
      () => callback(error),
      (closeError: Error) => callback(error ?? closeError),
    );
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    const handle = this.handle!;
    let remaining = buffers;
    for (;;) {
      const total = remaining.reduce((sum, buffer) => sum + buffer.length, 0);
      const { bytesWritten } = await handle.writev(remaining);
      this.bytesSinceWriteback += bytesWritten;
      if (bytesWritten === total) break;
      if (bytesWritten === 0) throw new Error(`${this.path}: the file took none of ${total} bytes`);
      remaining = skipBytes(remaining, bytesWritten);
    }
    if (this.durable && !this.writeback && this.bytesSinceWriteback >= WRITEBACK_BYTES) {
      this.bytesSinceWriteback = 0;
      // A failed writeback is kept for _final: Linux reports a lost write-back once, so the
      // closing fsync could succeed after this one failed.
      this.writeback = handle.datasync().then(
        () => (this.writeback = undefined),
        (err: Error) => {
          this.writebackError ??= err;
          this.writeback = undefined;
        },
      );
    }
  }
}

/** `buffers` without their first `count` bytes (after a short writev). */
function skipBytes(buffers: Buffer[], count: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (count >= buffer.length) {
      count -= buffer.length;
      continue;
    }
    rest.push(count > 0 ? buffer.subarray(count) : buffer);
    count = 0;
  }
  return rest;
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

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

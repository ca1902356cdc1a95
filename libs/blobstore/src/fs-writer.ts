import { constants, fchmodSync, fstatSync, type Stats } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AppendedFile } from './driver.js';

/** Bytes a writer buffers before it applies backpressure. */
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * A durable writer going through the page cache starts writing its dirty pages back once this
 * many bytes have arrived since the last time, while more keep arriving, so the fsync on close
 * waits for at most about this much instead of for the whole blob.
 */
const WRITEBACK_BYTES = 32 * 1024 * 1024;
/**
 * Direct writes start, end and sit in memory on this boundary: the largest logical block size
 * in common use, so it satisfies every smaller one.
 */
const DIRECT_ALIGNMENT = 4096;
/**
 * Bytes a direct writer gathers before writing them in one go. A writer holds two: one fills
 * while the other is written. Measured here, 1 MiB did as well as 8 MiB.
 */
const DIRECT_CHUNK_BYTES = 1024 * 1024;

/**
 * Bytes of a fresh blob one direct read asks for (see `copyFresh`), and the size of the slices
 * of the pool that lends them. Larger than the writers' slices: a direct read costs the CPU per
 * request as well as per byte (pinning the pages, the thread-pool round trip, the chunk's trip
 * through the HTTP response), and the writers' 1 MiB is also how much a blob must reach before it
 * is written directly, which small blobs rely on. Measured here, reading a 512 MiB file directly
 * cost 0.17–0.19 ms of CPU per MiB in 1 MiB reads and 0.08–0.14 in 4 MiB reads, at the same
 * 1.0–1.4 GiB/s; a fresh 256 MiB pull took 17% less of the gateway's CPU per MiB.
 */
export const DIRECT_READ_BYTES = 4 * 1024 * 1024;
/**
 * Slices one direct read of a fresh blob takes at most: one is sent while the others are read
 * into, so the disk has two reads queued; it makes do with two.
 */
const DIRECT_READ_SLICES = 3;
/**
 * The mark of a file written directly and not yet read: S_ISVTX, a mode bit Linux gives no
 * meaning on a regular file, set by a writer that wrote any of its bytes directly. Such a file
 * is not in the page cache, and on this machine filling the cache costs more than the disk: a
 * first read through it ran at 220–375 MiB/s, one with O_DIRECT at 1.2–2.2 GiB/s. So the reads
 * of a marked file bypass the cache too (`DirectStagingPool.copyFresh`), until one has read it
 * whole and cleared the mark: the reads after it go through the cache, and the first of them
 * fills it. Warming the cache in the background after the first pull was tried: the warm took
 * the CPU that pulls of the other fresh blobs needed (in four interleaved rounds, first pulls of
 * 4 × 256 MiB came back at 0.81×, 0.87×, 0.91× and 2.37× Distribution with it, and 1.02×, 1.06×,
 * 1.14× and 2.34× without). A mode bit, not a note in memory: it is on the file, so every
 * gateway of the region sees it.
 */
const FRESH_MARK = 0o1000;

/**
 * The aligned memory that direct writes are gathered in, or that fresh blobs are read into
 * (`copyFresh`): a pool does one or the other, with slices of its own size. O_DIRECT wants its
 * buffers aligned in memory, and JavaScript cannot ask where a Buffer lies; a WebAssembly memory
 * is mapped by whole pages, so its slices at multiples of the slice size are aligned. Made on first use
 * and then kept: a fixed number of slices, handed out and returned. A writer that finds none
 * free writes through the page cache instead, so the memory stays bounded however many uploads
 * run at once. So does every writer when the memory cannot be made: V8 reserves address space
 * for a WebAssembly memory far beyond its size, which a limit on virtual memory (`ulimit -v`)
 * can refuse, and `--jitless` has no WebAssembly at all.
 */
export class DirectStagingPool {
  private readonly free: Buffer[] = [];
  private memory: { readonly buffer: ArrayBuffer } | undefined;
  /**
   * Why direct writes are off for good: the filesystem refused a direct open or write (EINVAL:
   * it has no O_DIRECT, or wants another alignment), or the memory could not be made. From
   * then on every writer goes through the page cache.
   */
  private refusal: string | undefined;

  /**
   * `onRefused` hears, once, why direct I/O went off while the process was running. `sliceBytes`
   * is a multiple of the WebAssembly page (64 KiB): DIRECT_CHUNK_BYTES for writes,
   * DIRECT_READ_BYTES for reads.
   */
  constructor(
    readonly slices: number,
    private readonly onRefused: (reason: string) => void = () => undefined,
    readonly sliceBytes: number = DIRECT_CHUNK_BYTES,
  ) {}

  get usable(): boolean {
    return this.refusal === undefined;
  }

  /** Turns direct writes off for good; tells `onRefused` unless the caller reports it itself. */
  refuse(reason: string, options: { quietly?: boolean } = {}): void {
    if (this.refusal !== undefined) return;
    this.refusal = reason;
    if (!options.quietly) this.onRefused(reason);
  }

  acquire(): Buffer | undefined {
    if (!this.usable || this.slices === 0) return undefined;
    if (!this.memory) {
      const pages = (this.slices * this.sliceBytes) / WASM_PAGE_BYTES;
      const { WebAssembly } = globalThis as unknown as { WebAssembly?: WasmGlobal };
      try {
        this.memory = new WebAssembly!.Memory({ initial: pages, maximum: pages });
      } catch (err) {
        this.refuse(`no aligned memory: ${(err as Error).message}`);
        return undefined;
      }
      for (let i = this.slices - 1; i >= 0; i--) {
        this.free.push(Buffer.from(this.memory.buffer, i * this.sliceBytes, this.sliceBytes));
      }
    }
    return this.free.pop();
  }

  release(buffer: Buffer): void {
    this.free.push(buffer);
  }

  /**
   * Copies bytes `range.start`..`range.end` of the open file `handle` with O_DIRECT, if it
   * carries the fresh mark (FRESH_MARK) and at least two slices are free (one, for a range that
   * one slice holds); `send` hands a chunk on and resolves once its buffer may be reused.
   * Returns false, having read and sent nothing, when the caller should copy through the page
   * cache instead. A copy that reached the end of the file clears the mark.
   */
  async copyFresh(handle: FileHandle, range: { start: number; end: number }, send: (chunk: Buffer) => Promise<void>): Promise<boolean> {
    if (!this.usable || this.slices === 0) return false;
    // On the event loop: fstat of an open descriptor never waits for the disk, and a round trip
    // through the thread pool would cost every pull, hot ones included, more than the call.
    const { mode, size } = fstatSync(handle.fd);
    if ((mode & FRESH_MARK) === 0 || range.end >= size) return false;
    // Reads start on a block boundary and are whole blocks; only the bytes of the range are sent.
    const readEnd = alignUp(range.end + 1);
    let nextRead = range.start - (range.start % DIRECT_ALIGNMENT);
    // No more slices than the range has reads: a small blob's pull takes one, and leaves the
    // rest to the small pulls beside it (a pull that finds none free fills the page cache).
    const reads = Math.ceil((readEnd - nextRead) / this.sliceBytes);
    const wanted = Math.min(DIRECT_READ_SLICES, reads);
    const slices: Buffer[] = [];
    while (slices.length < wanted) {
      const slice = this.acquire();
      if (!slice) break;
      slices.push(slice);
    }
    if (slices.length < Math.min(2, wanted)) {
      for (const slice of slices) this.release(slice);
      return false;
    }
    let direct: FileHandle;
    try {
      direct = await open(`/proc/self/fd/${handle.fd}`, constants.O_RDONLY | constants.O_DIRECT);
    } catch (err) {
      for (const slice of slices) this.release(slice);
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') this.refuse(REFUSED_BY_FILESYSTEM);
      return false;
    }
    // Every slice but the one being sent has a read in flight: one read at a time left the disk
    // idle while a chunk was sent, and a virtual disk reads faster with several requests queued
    // (a 256 MiB blob read directly in 1 MiB reads, one at a time: 640-920 MiB/s; four at once:
    // 1.1 GiB/s; in 4 MiB reads, 820-940 MiB/s one at a time, 1.0-1.2 GiB/s two at once). The
    // chunks are sent in order.
    const inFlight: Array<Promise<{ slice: Buffer; position: number; length: number; bytesRead: number }>> = [];
    const readInto = (slice: Buffer): void => {
      if (nextRead >= readEnd) return;
      const position = nextRead;
      const length = Math.min(slice.length, readEnd - position);
      nextRead += length;
      const read = direct.read(slice, 0, length, position).then(({ bytesRead }) => ({ slice, position, length, bytesRead }));
      // Awaited in turn; meanwhile a failure must not count as an unhandled rejection.
      read.catch(() => undefined);
      inFlight.push(read);
    };
    try {
      for (const slice of slices) readInto(slice);
      for (let sent = range.start; sent <= range.end; ) {
        const { slice, position, length, bytesRead } = await inFlight.shift()!;
        const skip = sent - position;
        // A read short of what it asked, before the range's end, means the file ended (or shrank)
        // there: the reads queued after it start further on, and sending on would leave a gap.
        if (bytesRead <= skip || (bytesRead < length && position + bytesRead <= range.end)) {
          throw new Error(`the file ended at ${position + bytesRead}, before ${range.end + 1}`);
        }
        const chunk = slice.subarray(skip, Math.min(bytesRead, range.end + 1 - position));
        await send(chunk);
        sent += chunk.length;
        readInto(slice);
      }
    } finally {
      // A slice goes back to the pool only once no read can still be filling it, and the send
      // that had it has settled (a closed destination rejects only once it let go of its chunk).
      await Promise.allSettled(inFlight);
      for (const slice of slices) this.release(slice);
      await direct.close();
    }
    if (range.end === size - 1) {
      try {
        fchmodSync(handle.fd, mode & 0o7777 & ~FRESH_MARK);
      } catch {
        // Still marked: the next pull reads directly too, and tries again.
      }
    }
    return true;
  }

  /**
   * Writes one aligned block to `file` with O_DIRECT, then removes it, and says how writers
   * will write: directly, through the page cache (and why; from then on they do), or not known
   * (and why it could not tell). It never throws: it only informs a log line.
   */
  async probe(file: string): Promise<DirectWriteProbe> {
    if (this.slices === 0) return { writes: 'cached', reason: 'direct writes are turned off' };
    const slice = this.acquire();
    if (!slice) return this.refusal === undefined ? { writes: 'unknown', reason: 'no aligned slice is free' } : { writes: 'cached', reason: this.refusal };
    try {
      const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT);
      try {
        await handle.write(slice, 0, DIRECT_ALIGNMENT, 0);
      } finally {
        await handle.close();
      }
      return { writes: 'direct' };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Anything else (a full or read-only disk) says nothing about O_DIRECT, and must not stop
      // a gateway that could still serve pulls: the writes themselves will find out.
      if (code !== 'EINVAL') return { writes: 'unknown', reason: `the probe failed (${code ?? String(err)})` };
      // The caller logs the probe's answer.
      this.refuse(REFUSED_BY_FILESYSTEM, { quietly: true });
      return { writes: 'cached', reason: REFUSED_BY_FILESYSTEM };
    } finally {
      this.release(slice);
      await rm(file, { force: true }).catch(() => undefined);
    }
  }
}

/** What a probe found: how writers will write, and why when not directly. */
export type DirectWriteProbe = { writes: 'direct' } | { writes: 'cached' | 'unknown'; reason: string };

function alignUp(bytes: number): number {
  return Math.ceil(bytes / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT;
}

const WASM_PAGE_BYTES = 64 * 1024;
const REFUSED_BY_FILESYSTEM = 'the filesystem refuses O_DIRECT';
interface WasmGlobal {
  Memory: new (descriptor: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
}

/**
 * A file written through one FileHandle at explicit positions, in one of two ways.
 *
 * Directly (O_DIRECT), when the pool lends it aligned memory: received bytes are copied into a
 * 1 MiB slice, and each full slice is written straight to the disk while the next one fills.
 * A writer asks for its slice once its first 1 MiB has arrived (until then it holds what came),
 * so small and slow uploads do not tie slices up, and a file smaller than that is written in
 * one go through the cache at close. On a virtual machine the first touch of every new
 * page-cache page is expensive (measured here:
 * dd filled the page cache at 315–392 MB/s against 1.8–2.2 GB/s for direct writes), and a
 * pushed layer is seldom read back at once, so bypassing the cache both speeds pushes and
 * keeps them from evicting the blobs that pulls are reading. A few bytes go through the cache
 * all the same: an append that starts mid-block writes up to the next block boundary, and the
 * last partial slice is written at close (a file smaller than one slice never opens a direct
 * descriptor at all).
 *
 * Through the page cache otherwise, several received chunks per writev. Unlike fs.WriteStream
 * with `flush`, which leaves a whole blob dirty until one fsync at the end, a durable writer
 * has the kernel write back every WRITEBACK_BYTES in the background (fdatasync, off the event
 * loop) while the next bytes are received and hashed, so closing waits for the last few MiB.
 */
export class FileWriter extends Writable {
  private handle: FileHandle | undefined;
  /** Opened by the first direct write; the slice being written and the next may both wait for it. */
  private directHandle: Promise<FileHandle> | undefined;
  /** File offset of the next byte to write, or, while a slice is filling, of its first byte. */
  private position = 0;
  private bytesSinceWriteback = 0;
  private writeback: Promise<unknown> | undefined;
  private writebackError: Error | undefined;
  /** The file an append opened, once it has (StorageDriver.writer). */
  appendedTo: AppendedFile | undefined;
  /** Whether this writer created its file (a durable append then makes the new name durable). */
  private created = false;
  /** The slice being filled, and how much of it is; undefined when writing through the cache. */
  private slice: Buffer | undefined;
  private filled = 0;
  /** The other slice, being written while `slice` fills. */
  private spare: Buffer | undefined;
  private spareWrite: Promise<void> | undefined;
  /**
   * Bytes received before the writer has chosen how to write: held until there is 1 MiB of them
   * (or the stream ends), then the writer asks the pool for a slice, and writes through the
   * cache from then on if it gets none.
   */
  private undecided: Buffer[] | undefined = [];
  private undecidedBytes = 0;
  /** Direct writes under way; their slices are not let go before they end. */
  private readonly directWrites = new Set<Promise<void>>();
  /**
   * The _write, _writev or _final in progress, which a destroy waits for before it lets slices
   * go: Writable calls _destroy at once, even while one of them is still writing.
   */
  private working: Promise<void> | undefined;

  constructor(
    private readonly path: string,
    private readonly append: boolean,
    private readonly durable: boolean,
    private readonly staging: DirectStagingPool,
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
    const { O_WRONLY, O_CREAT, O_TRUNC, O_EXCL } = constants;
    // No O_APPEND even for an append: writes name their position, which O_APPEND would ignore,
    // and a direct write and a cached one must each land exactly where they are meant to.
    if (!this.append) return open(this.path, O_WRONLY | O_CREAT | O_TRUNC);
    // Nearly every append goes to a file that is there already (an upload session's, placed
    // empty or holding its earlier chunks): opened as it is first, it costs one open, not a
    // refused exclusive create and then the open.
    for (let attempt = 0; ; attempt++) {
      let handle: FileHandle;
      try {
        handle = await open(this.path, O_WRONLY);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        try {
          handle = await open(this.path, O_WRONLY | O_CREAT | O_EXCL);
          this.created = this.durable;
        } catch (again) {
          // Made by another writer between the two opens: opened as it is, once more.
          if ((again as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw again;
          continue;
        }
      }
      try {
        // An open descriptor's inode is in memory: on the event loop, as in `markFresh`.
        const info = fstatSync(handle.fd);
        this.position = info.size;
        this.appendedTo = { identity: fileIdentity(info), startSize: info.size };
      } catch (err) {
        await handle.close();
        throw err;
      }
      return handle;
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.working = this.take([chunk]);
    this.working.then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.working = this.take(chunks.map((entry) => entry.chunk));
    this.working.then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.working = (async () => {
      await this.finishDirect();
      // Destroyed while closing: the destroy closes the file, and no sync can make it whole.
      if (this.destroyed) return;
      // Bytes written directly are not in the page cache: the first reader reads them directly too.
      if (this.directHandle) this.markFresh();
      await this.writeback;
      if (this.writebackError) throw this.writebackError;
      if (this.durable) await this.handle!.sync();
      // A file appended to in place (an upload session's first chunk) has no rename to commit
      // its name, so its folder, and that folder's entry in its own parent (the session's
      // folder is as new as the file), are synced here; otherwise a crash could lose a chunk
      // that was acknowledged. A file written whole is renamed into place by move(), which
      // syncs its destination.
      if (this.created) {
        const folder = path.dirname(this.path);
        await syncDirectory(folder);
        await syncDirectory(path.dirname(folder));
      }
    })();
    this.working.then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    (async () => {
      // A write or close still in progress may yet fill a slice and start a direct write: it
      // stops at its next step, and is waited for. A direct write still running holds its
      // descriptor and its slice; both are let go once it is done, and never while the slice
      // could still be written to.
      await this.working?.catch(() => undefined);
      await Promise.allSettled(this.directWrites);
      await this.writeback;
      this.releaseSlices();
      const { handle, directHandle } = this;
      this.handle = this.directHandle = undefined;
      const closed = await Promise.allSettled([handle?.close(), directHandle?.then((direct) => direct.close(), () => undefined)]);
      const failed = closed.find((outcome) => outcome.status === 'rejected');
      if (failed) throw failed.reason;
    })().then(
      () => callback(error),
      (closeError: Error) => callback(error ?? closeError),
    );
  }

  /** Takes received bytes: held until the writer has chosen, then into a slice or straight to the file. */
  private async take(buffers: Buffer[]): Promise<void> {
    if (this.undecided) {
      this.undecided.push(...buffers);
      this.undecidedBytes += buffers.reduce((sum, buffer) => sum + buffer.length, 0);
      if (this.undecidedBytes < DIRECT_CHUNK_BYTES) return;
      buffers = this.undecided;
      this.undecided = undefined;
      this.slice = this.staging.acquire();
    }
    if (!this.slice) return this.writeThroughCache(buffers);
    for (const buffer of buffers) {
      let rest = buffer;
      while (rest.length > 0) {
        // Destroyed meanwhile: what is left is not wanted, and the destroy reports why.
        if (this.destroyed) return;
        // Direct writes must start on a block boundary: an append that does not goes through the
        // cache up to the next one first.
        const misaligned = this.filled === 0 ? this.position % DIRECT_ALIGNMENT : 0;
        if (misaligned !== 0) {
          const head = rest.subarray(0, DIRECT_ALIGNMENT - misaligned);
          await this.writeThroughCache([head]);
          rest = rest.subarray(head.length);
          continue;
        }
        const copied = rest.copy(this.slice!, this.filled);
        this.filled += copied;
        rest = rest.subarray(copied);
        if (this.filled === DIRECT_CHUNK_BYTES) await this.writeSlice();
      }
    }
  }

  /** Hands the full slice to the disk and carries on filling the spare (once its own write is done). */
  private async writeSlice(): Promise<void> {
    const full = this.slice!;
    const write = this.writeDirect(full, this.position);
    write.catch(() => undefined);
    this.position += full.length;
    this.filled = 0;
    this.spare ??= this.staging.acquire();
    if (!this.spare) {
      // No second slice to fill meanwhile: wait for this one.
      await write;
      return;
    }
    await this.spareWrite;
    this.slice = this.spare;
    this.spare = full;
    this.spareWrite = write;
  }

  /**
   * At close: writes what the writer still holds. A file that never reached 1 MiB goes through
   * the cache in one go; otherwise this waits for the slice being written, then writes what is
   * left of the filling one.
   */
  private async finishDirect(): Promise<void> {
    if (this.undecided) {
      const held = this.undecided;
      this.undecided = undefined;
      if (held.length > 0) await this.writeThroughCache(held);
      return;
    }
    await this.spareWrite;
    const slice = this.slice;
    if (!slice || this.filled === 0 || this.destroyed) return;
    const bytes = slice.subarray(0, this.filled);
    this.filled = 0;
    // Whole blocks go directly if a direct descriptor is open already; a file smaller than one
    // slice is not worth opening one for.
    const whole = this.directHandle ? bytes.length - (bytes.length % DIRECT_ALIGNMENT) : 0;
    if (whole > 0) {
      await this.writeDirect(bytes.subarray(0, whole), this.position);
      this.position += whole;
    }
    if (whole < bytes.length) await this.writeThroughCache([bytes.subarray(whole)]);
  }

  private markFresh(): void {
    // fstat and fchmod of an open descriptor change only the inode in memory: on the event loop,
    // they cost less than two round trips through the thread pool.
    const { mode } = fstatSync(this.handle!.fd);
    if ((mode & FRESH_MARK) === 0) fchmodSync(this.handle!.fd, (mode & 0o7777) | FRESH_MARK);
  }

  /**
   * Writes `bytes` (aligned in memory, a whole number of blocks) at `position` bypassing the page
   * cache; if the filesystem refuses direct I/O, writes them through the cache instead and
   * tells the pool, so no later writer tries.
   */
  private writeDirect(bytes: Buffer, position: number): Promise<void> {
    const write = this.writeDirectNow(bytes, position);
    this.directWrites.add(write);
    const forget = () => void this.directWrites.delete(write);
    write.then(forget, forget);
    return write;
  }

  private async writeDirectNow(bytes: Buffer, position: number): Promise<void> {
    // Refused once, here or by another writer: the rest goes through the cache.
    if (!this.staging.usable) {
      await this.writeAt([bytes], position);
      return;
    }
    try {
      this.directHandle ??= this.openDirect();
      const handle = await this.directHandle;
      let written = 0;
      while (written < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
        if (bytesWritten === 0) throw new Error(`${this.path}: the file took none of ${bytes.length - written} bytes`);
        written += bytesWritten;
        // A short direct write leaves a remainder that may not be aligned: the cache takes it.
        if (written < bytes.length && written % DIRECT_ALIGNMENT !== 0) {
          await this.writeAt([bytes.subarray(written)], position + written);
          return;
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      this.staging.refuse(REFUSED_BY_FILESYSTEM);
      await this.writeAt([bytes], position);
    }
  }

  /**
   * A second descriptor on the very file the writer opened, with O_DIRECT: through /proc, so a
   * file renamed or replaced meanwhile cannot be mistaken for it; by name where /proc is absent.
   */
  private async openDirect(): Promise<FileHandle> {
    const flags = constants.O_WRONLY | constants.O_DIRECT;
    try {
      return await open(`/proc/self/fd/${this.handle!.fd}`, flags);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return open(this.path, flags);
    }
  }

  /** Writes at the current position through the page cache, starting a writeback now and then. */
  private async writeThroughCache(buffers: Buffer[]): Promise<void> {
    const bytes = await this.writeAt(buffers, this.position);
    this.position += bytes;
    this.bytesSinceWriteback += bytes;
    if (this.durable && !this.writeback && this.bytesSinceWriteback >= WRITEBACK_BYTES) {
      this.bytesSinceWriteback = 0;
      // A failed writeback is kept for _final: Linux reports a lost write-back once, so the
      // closing fsync could succeed after this one failed.
      this.writeback = this.handle!.datasync().then(
        () => (this.writeback = undefined),
        (err: Error) => {
          this.writebackError ??= err;
          this.writeback = undefined;
        },
      );
    }
  }

  /** Writes all of `buffers` at `position` through the cached descriptor; returns the byte count. */
  private async writeAt(buffers: Buffer[], position: number): Promise<number> {
    const handle = this.handle!;
    let remaining = buffers;
    let written = 0;
    for (;;) {
      const total = remaining.reduce((sum, buffer) => sum + buffer.length, 0);
      const { bytesWritten } = await handle.writev(remaining, position + written);
      written += bytesWritten;
      if (bytesWritten === total) return written;
      if (bytesWritten === 0) throw new Error(`${this.path}: the file took none of ${total} bytes`);
      remaining = skipBytes(remaining, bytesWritten);
    }
  }

  private releaseSlices(): void {
    for (const slice of [this.slice, this.spare]) if (slice) this.staging.release(slice);
    this.slice = this.spare = undefined;
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

/**
 * FileInfo.identity of the file `info` describes: what tells it from a later file of the same
 * name. Undefined where the filesystem keeps no birth time (Node gives 0: ext2/3, ext4 with
 * 128-byte inodes, NFSv3): there a removed file's inode number goes to the next file made, and
 * `dev:ino` alone would vouch for other bytes as the ones a digest was noted of.
 */
export function fileIdentity(info: Pick<Stats, 'dev' | 'ino' | 'birthtimeMs'>): string | undefined {
  return info.birthtimeMs ? `${info.dev}:${info.ino}:${info.birthtimeMs}` : undefined;
}

export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

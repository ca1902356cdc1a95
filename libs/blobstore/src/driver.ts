import type { Readable, Writable } from 'node:stream';

/**
 * The byte-storage driver under the content-addressed store: a dozen file-like operations on
 * slash-separated paths relative to the driver's root, nothing more (Distribution's
 * storagedriver.go is the model). Paths come only from paths.ts, never from a request. An
 * S3-compatible driver implements the same contract and must pass driver-suite.ts.
 *
 * Whatever the driver made earlier may vanish behind its back (an operator deleting the data,
 * a lost volume): every write makes again the folders it needs, whatever it remembers having
 * made. A write that fails reports its real cause: the system's error (EROFS, ENOSPC, EACCES,
 * naming the path), never a PathNotFoundError unless what the call reads is what is missing.
 */
export interface StorageDriver {
  readonly name: string;

  /** Size and modification time; throws PathNotFoundError when nothing is at `path`. */
  stat(path: string): Promise<FileInfo>;

  /**
   * A stream of the bytes from `start` (inclusive) to `end` (inclusive, default: the last byte).
   * Throws PathNotFoundError. A reader opened before a delete keeps reading the old bytes to
   * the end: deletes are safe against concurrent readers.
   */
  reader(path: string, range?: { start: number; end?: number }): Promise<Readable>;

  /**
   * A stream writing to `path`, creating parent folders; with `append` the bytes go after any
   * already there. Unless `durable` is false, the bytes are flushed to stable storage by the
   * time the stream emits 'close' after end(), and so is the file's name when an append
   * created it (nothing renames it into place later); a destroyed stream leaves whatever
   * reached the file. An append writer may tell, once it has finished, which file its bytes
   * went into (`appendedTo`): the caller then needs no look by name, which could meet another
   * file that has taken the name since.
   */
  writer(path: string, options: { append: boolean; durable?: boolean }): Promise<Writable & { readonly appendedTo?: AppendedFile | undefined }>;

  /**
   * Optional fast path for serving: writes bytes `start`..`end` (inclusive) of `path` into
   * `destination` (which it does not end), refilling a couple of reused buffers only once the
   * destination has taken each one, so a pull allocates nothing per chunk and holds at most two
   * chunks. Throws PathNotFoundError before writing anything; rejects if the destination closes
   * early. The store falls back to reader() for drivers without it.
   */
  copyTo?(path: string, range: { start: number; end: number }, destination: Writable): Promise<void>;

  /** Cuts the file at `path` to `size` bytes (to undo a chunk that failed half-way). */
  truncate(path: string, size: number): Promise<void>;

  /**
   * Creates a file at `path` holding `content` (empty when omitted) only if nothing is there,
   * atomically across processes (O_EXCL; a conditional PUT on object storage). Returns false
   * when something already is. Creates the parent folders. A reader may briefly see the file
   * empty before its content is in. The store builds its cross-process session locks on it.
   */
  createExclusive(path: string, content?: string): Promise<boolean>;

  /**
   * Makes the folder at `path` (and any missing above it) only if nothing is there, atomically
   * across processes (mkdir): true when this call made it, false when it was already there.
   * Not made durable: the store claims an upload session by making its folder (see BlobStore).
   */
  createFolder(path: string): Promise<boolean>;

  /**
   * Sets the file's modification time to now, if it is there (a lock holder's heartbeat).
   * Optional: without it, locks can only be judged by age, so the store waits longer before
   * breaking one.
   */
  touch?(path: string): Promise<void>;

  /**
   * Whether the store can take a write now, by writing (and removing) a few bytes at its root:
   * resolves when it can; throws PathNotFoundError('') when the root itself is gone, and the
   * system's error (read-only, full, not permitted) when it refuses. It never makes the root:
   * a root that has vanished (a lost volume, a bad mount) is reported, not quietly made anew.
   * For readiness checks; it leaves nothing behind.
   */
  checkWritable(): Promise<void>;

  /**
   * Where `path` is, in the driver's own terms (an absolute file path, an object URL), for logs
   * that an operator acts on. Optional: the relative path is logged otherwise.
   */
  locate?(path: string): string;

  /** Small whole-file writes for state, durable and atomic (replace-by-rename). */
  putContent(path: string, content: Uint8Array | string): Promise<void>;
  getContent(path: string): Promise<Buffer>;

  /**
   * Moves `source` to `destination` atomically, replacing what is there: a reader sees the old
   * bytes or the new, never a mix, and of many moves of one source at once exactly one succeeds.
   * Creates the destination's parent folders. Unless `durable` is false, the destination's name
   * is on stable storage when it resolves; with `flush`, so are its bytes (a file written with
   * `durable: false`). Throws PathNotFoundError (naming `source`) only when the source is
   * missing. A folder moves onto nothing or an empty folder only: onto one with anything in
   * it the move throws the system's EEXIST or ENOTEMPTY, so of many folders moved onto one
   * place at once exactly one succeeds (the store places new upload sessions so). With
   * `replace: false` a file moves only where nothing is: when something is at `destination`,
   * even one put there a moment before by another process, the move throws the system's
   * EEXIST and leaves both files as they were (the store gives a session's bytes back so).
   */
  move(source: string, destination: string, options?: MoveOptions): Promise<void>;

  /**
   * Removes the folder at `path` only if it is empty; succeeds, doing nothing, when it is not
   * or is not there. Optional: object stores have no folders to leave behind.
   */
  removeEmptyFolder?(path: string): Promise<void>;

  /**
   * Makes, durably, the folders blobs are moved into, before the first write: a blob's 201 then
   * never depends on a folder another writer made a moment before and has not yet made durable.
   * Safe to run again and from several processes at once. Optional: object stores have no
   * folders.
   */
  prepare?(): Promise<void>;

  /**
   * How this driver writes blobs, in a few words, for the start log: found by trying, so that
   * a fallback shows before the first push, not only in its speed. Optional.
   */
  describeWrites?(): Promise<string>;

  /** Removes a file or a whole folder; succeeds when nothing is there. */
  delete(path: string): Promise<void>;

  /** Names of the direct children of a folder; empty when the folder does not exist. */
  list(path: string): Promise<string[]>;
}

export interface MoveOptions {
  flush?: boolean;
  durable?: boolean;
  /** False: refuse (EEXIST) rather than replace what is at the destination. Default true. */
  replace?: boolean;
  /**
   * A check of the caller's that must pass for the move to happen, run while the source's bytes
   * are flushed (`flush`) rather than after: a query's round trip costs the move no time then.
   */
  whileFlushing?: () => Promise<void>;
}

export interface FileInfo {
  size: number;
  modifiedAt: Date;
  isDirectory: boolean;
  /**
   * What tells this file from another that later took its name (a filesystem's device, inode and
   * birth time), where the driver knows it. A rename keeps it; a file made afresh gets another.
   */
  identity?: string;
  /**
   * How many names the file has (a filesystem's hard links), where the driver knows it. More than
   * one: another path (a blob, a session's `data`) reaches the same bytes, and a write through
   * either changes both.
   */
  links?: number;
}

/** The file an append writer opened (see StorageDriver.writer), as it was when opened. */
export interface AppendedFile {
  /** Its FileInfo.identity, where the driver knows one. */
  identity: string | undefined;
  /** How many bytes it held before the writer's first. */
  startSize: number;
}

export class PathNotFoundError extends Error {
  constructor(readonly path: string) {
    super(`path not found: ${path}`);
    this.name = 'PathNotFoundError';
  }
}

import { createHash, randomUUID, type Hash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LRUCache } from 'lru-cache';
import {
  BlobUnknownError,
  BlobUploadInvalidError,
  BlobUploadUnknownError,
  DigestInvalidError,
  RegistryError,
  SizeInvalidError,
  StorageFailedError,
  StorageFullError,
  UploadRangeInvalidError,
  createDigester,
  type Digest,
  type DigestAlgorithm,
} from '@meridian/oci';
import { PathNotFoundError, type FileInfo, type StorageDriver } from './driver.js';
import { HashingStream } from './hashing-stream.js';
import { UPLOAD_CLAIM_PREFIX, isUploadId, paths } from './paths.js';

export interface CompleteUploadOptions {
  expectedSize?: number;
  lastChunk?: { source: Readable; options: AppendOptions };
  /**
   * What the session's last chunk noted (`appendChunk`), as the client carried it back, through
   * the signed state its owner gave it. Spares the close reading and hashing the bytes again
   * when it lands on a process that did not take that chunk; trusted only for the very file and
   * size it was taken of, in this boot of this host (see NotedDigest).
   */
  noted?: NotedDigest | undefined;
  /**
   * Throws unless the owner's record still has the session open; asked while the session is
   * held, before bytes are moved into place under a digest taken earlier (kept in this process
   * or `noted`) rather than from the bytes just now. A session that ended has had its file
   * removed, and a late chunk may have made it again with other bytes as a file the filesystem
   * gives the same identity; only the record tells that the session the digest was taken in is gone.
   */
  confirmOpen?: () => Promise<void>;
  /**
   * The owner's record that the session has ended, made while the session is still held and
   * before its bytes are removed, when they hash to another digest than the PUT's: so that no
   * moment has the session's file gone while its record says it is open (see `confirmOpen`).
   */
  recordEnd?: () => Promise<void>;
  /** The owner's record of the close, made while the session is still held. */
  commit?: (blob: BlobInfo) => Promise<void>;
}

/** What `purgeStale` removed. */
export interface PurgedUploads {
  /** The ids of the sessions whose files went. */
  sessions: string[];
  /** Staging files a crash left. */
  stagingFiles: number;
}

/**
 * What a session's bytes hashed to after a chunk (`appendChunk`), for its owner to carry to the
 * closing PUT (in the upload state it signs), which may be served by any process. The store
 * trusts it only where `file` names the file it looks at then, holding `size` bytes: a
 * session's file only grows, or is cut back to a size it had, with the same bytes, while it
 * keeps its identity. `file` also names this host's boot: chunks are not synced, so after a
 * machine crash, which may have lost bytes it vouched for, the bytes are hashed again.
 */
export interface NotedDigest {
  size: number;
  /** `sha256:<hex>` */
  digest: string;
  /** A hash of the file's identity (FileInfo.identity) and of this host and boot. */
  file: string;
}

/** A session after a chunk (`appendChunk`). */
export interface AppendedChunk {
  /** The bytes the session holds now. */
  size: number;
  /** Their digest, where the store can tell which file holds them (see NotedDigest). */
  noted: NotedDigest | undefined;
}

export interface BlobInfo {
  digest: string;
  size: number;
}

/**
 * Whether the store holds a blob's bytes (see `confirm`); when it does not, where it looked and
 * what it found there, for the log an operator acts on.
 */
export type BlobCheck = { held: true } | { held: false; path: string; problem: string };

const HELD: BlobCheck = { held: true };

export interface AppendOptions {
  /** Where the client says the chunk starts (Content-Range); must equal the bytes held so far. */
  start?: number;
  /** How many bytes the client says the chunk holds; a body of another length is refused. */
  length?: number;
}

/**
 * A blob declared smaller than this is written even when the store already holds it, without
 * looking first: nearly every small blob pushed is new (clients ask with a HEAD before they
 * push), so the look, a failed stat, cost every POST-then-PUT and monolithic push a file call
 * (a tenth of theirs) to spare the rare repeat a write of a few KiB. The rename puts the same
 * verified bytes in place; readers of the old file finish undisturbed.
 */
const REWRITTEN_BELOW_BYTES = 1024 * 1024;

/**
 * A session's digest taken earlier (kept here or noted) is trusted at its close only from this
 * size on; smaller sessions are read and hashed again. Trusting one costs the close a query
 * (`confirmOpen`), more CPU than hashing a few hundred KiB, and the small pushes are most of them.
 */
const TRUSTED_DIGEST_MIN_BYTES = 256 * 1024;

/** How many times `sessionFile` looks for a session's bytes that keep changing name under it. */
const SESSION_FILE_LOOKS = 5;

/** How long a request waits for another writer to release a session before giving up. */
const LOCK_WAIT_MS = 2000;

/**
 * One request's hold on an upload session (see `claimSession`): the session's bytes are in
 * `file` (`uploads/<id>/data.<holder>`) while it is held, and only this request writes them.
 */
interface SessionClaim {
  id: string;
  file: string;
  /** Whether `file` holds the session's bytes: false while the session has had no chunk, and once they became the blob or went. */
  holdsBytes: boolean;
  /** Whether the session's folder is still there to release (false once discarded). */
  folderKept: boolean;
  /**
   * Whether `file` is the empty one `placeSession` made and no byte has gone into it yet: it is
   * removed at release rather than given back, so a session no chunk went into keeps no files.
   */
  placedEmpty: boolean;
  /** The identity (FileInfo.identity) of the file holding the session's bytes, once looked at. */
  bytesIdentity?: string | undefined;
  /** Whether a failed heartbeat has been reported: once per claim, however often it fails. */
  heartbeatReported?: boolean;
  /**
   * Whether `file`, taken over from a holder judged gone, may be written through another way
   * than this claim (see `copyFromFormerHolder`).
   */
  formerHolderMayWrite?: boolean;
}

/**
 * Hears what the store could not do but did not fail a request for (a heartbeat, a cleanup):
 * `details` names the upload session, the path (the driver's `locate`) and the cause. The
 * gateway passes its logger's `warn`; without one, the process's warning channel hears it.
 */
export type StoreWarning = (details: { upload: string; path?: string; cause: string }, message: string) => void;

interface RunningHash {
  hash: Hash;
  /** How many bytes of the upload the hash has seen. */
  size: number;
  /**
   * The identity of the file it saw them in. Size alone does not tell: after another process
   * closed the session, a late chunk may make its folder again with other bytes of the same
   * size, and a hash kept here from before would vouch for them as the blob.
   */
  identity: string | undefined;
}

/**
 * The content-addressed store: verified blobs by digest, and upload sessions that become blobs
 * only when the bytes hash to the digest the client names. Nothing reaches `blobs/` unverified:
 * every write lands under `staging/` or `uploads/` first and is renamed into place after the
 * check. Errors are the typed errors of libs/oci.
 *
 * sha256 is computed while chunks arrive and kept between chunks in memory (bounded LRU). Node
 * cannot serialise a hash state, so a process that did not see the earlier chunks (after a
 * restart, or another gateway of the region) rebuilds it by re-reading the bytes from disk.
 */
export class BlobStore {
  private readonly runningHashes: LRUCache<string, RunningHash>;
  /** The requests working on a session in this process, by session, in the order they came. */
  private readonly uploadLocks = new Map<string, Promise<unknown>>();
  /**
   * Claimed files this process could not give back (see `releaseSession`): still under its
   * own name, which no request of another process judges abandoned while it runs, so the next
   * request here takes them on at once.
   */
  private readonly strandedClaims = new Set<string>();
  /** Looks at blobs' bytes under way (see `confirm`), by digest and size. */
  private readonly confirming = new Map<string, Promise<BlobCheck>>();

  private readonly staleLockMs: number;
  private readonly staleForeignLockMs: number;
  private readonly warn: StoreWarning;

  constructor(
    private readonly driver: StorageDriver,
    options: { maxRunningHashes?: number; staleLockMs?: number; staleForeignLockMs?: number; warn?: StoreWarning } = {},
  ) {
    this.runningHashes = new LRUCache({ max: options.maxRunningHashes ?? 1024 });
    this.warn = options.warn ?? ((details, message) => process.emitWarning(`${message} ${JSON.stringify(details)}`, 'BlobStoreWarning'));
    // A holder refreshes its claimed file (touch) while it works, so an untouched claim is soon
    // a dead one's; a driver that cannot touch leaves age as a weak signal, so it waits far longer.
    this.staleLockMs = options.staleLockMs ?? (driver.touch ? 60_000 : 3600_000);
    this.staleForeignLockMs = Math.max(this.staleLockMs, options.staleForeignLockMs ?? 3600_000);
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const info = await this.driver.stat(paths.blob(digest));
      return { digest: digest.value, size: info.size };
    } catch (err) {
      if (err instanceof PathNotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * Whether the store holds the blob's bytes now (`size` of them, when given): what a pull
   * relies on. Bytes that are missing, of another size, or cannot even be looked at (the
   * store's root gone, a file unreadable) are not held; this never throws for them.
   *
   * Nothing is remembered: every call looks (one stat), except that calls for the same blob
   * while a look is under way share it. A hot blob (a layer many nodes pull at once) then costs
   * one stat per round trip to the disk rather than one per request; a call is never answered
   * by a look that ended before it was made.
   */
  async confirm(digest: Digest, size?: number): Promise<BlobCheck> {
    const key = size === undefined ? digest.value : `${digest.value} ${size}`;
    let looking = this.confirming.get(key);
    if (!looking) {
      looking = this.look(digest, size);
      this.confirming.set(key, looking);
      void looking.finally(() => this.confirming.delete(key));
    }
    return looking;
  }

  private async look(digest: Digest, size: number | undefined): Promise<BlobCheck> {
    const relative = paths.blob(digest);
    let problem: string;
    try {
      const info = await this.driver.stat(relative);
      if (!info.isDirectory && (size === undefined || info.size === size)) return HELD;
      problem = info.isDirectory ? 'a folder is in its place' : `its file holds ${info.size} bytes, not ${size}`;
    } catch (err) {
      problem = err instanceof PathNotFoundError ? 'its file is missing' : `its file cannot be read: ${(err as Error).message}`;
    }
    return { held: false, path: this.locate(relative), problem };
  }

  /**
   * Whether the store can take a write now (readiness): throws a StorageFailedError or
   * StorageFullError naming the cause and the path when it cannot, the root being gone included.
   */
  async checkWritable(): Promise<void> {
    try {
      await this.driver.checkWritable();
    } catch (err) {
      if (err instanceof PathNotFoundError) throw new StorageFailedError("the blob store's root is gone", 'ENOENT', this.locate(''), err);
      throw this.storageFault(err, () => '');
    }
  }

  /** Bytes `start`..`end` (inclusive) of a blob; throws BlobUnknownError. */
  async read(digest: Digest, range?: { start: number; end?: number }): Promise<Readable> {
    try {
      return await this.driver.reader(paths.blob(digest), range);
    } catch (err) {
      if (err instanceof PathNotFoundError) throw new BlobUnknownError(`blob ${digest.value} is not in the store`);
      throw err;
    }
  }

  /**
   * Writes bytes `range.start`..`range.end` of a blob into `destination` without ending it,
   * through the driver's buffer-reusing copy when it has one. Throws BlobUnknownError before
   * writing anything when the bytes are missing.
   */
  async copyTo(digest: Digest, range: { start: number; end: number }, destination: Writable): Promise<void> {
    try {
      if (this.driver.copyTo) {
        await this.driver.copyTo(paths.blob(digest), range, destination);
        return;
      }
      await pipeline(await this.driver.reader(paths.blob(digest), range), destination, { end: false });
    } catch (err) {
      if (err instanceof PathNotFoundError) throw new BlobUnknownError(`blob ${digest.value} is not in the store`);
      throw err;
    }
  }

  /** Removes a blob's bytes. Readers already streaming it finish undisturbed. */
  async delete(digest: Digest): Promise<void> {
    await this.driver.delete(paths.blob(digest));
  }

  /**
   * Stores `source` as the blob `expected` (a monolithic upload): hashed while it streams to a
   * staging file, verified, then renamed into place. A blob already held is hashed without being
   * written again. Throws DigestInvalidError or SizeInvalidError and keeps nothing on mismatch.
   */
  async put(expected: Digest, source: Readable, expectedSize?: number): Promise<BlobInfo> {
    const hashing = new HashingStream(createDigester(expected.algorithm), expectedSize);
    await this.storeVerified(expected, source, hashing, expectedSize, { staging: paths.staging(randomUUID()), declaredSize: expectedSize });
    return { digest: expected.value, size: hashing.bytes };
  }

  /**
   * Starts an upload session (distribution-spec "Pushing blobs": POST). Nothing is written: a
   * session has no files until its first chunk, so the POST-then-PUT push most clients make
   * costs no session files at all. Whether a session has ended is its owner's record (the
   * region's metadata); the store holds only the bytes.
   */
  createUpload(): string {
    return randomUUID();
  }

  /**
   * How many upload sessions hold bytes: those that have had a chunk and are not closed,
   * cancelled or purged yet (a session has no files before its first chunk).
   */
  async uploadsHoldingBytes(): Promise<number> {
    return (await this.driver.list(paths.uploadsRoot)).filter(isUploadId).length;
  }

  /** Bytes received so far: 0 for a session that has had no chunk (or is gone). */
  async uploadSize(id: string): Promise<number> {
    return (await this.sessionFile(id))?.info.size ?? 0;
  }

  /**
   * Appends a chunk (PATCH, or the body of the closing PUT). A chunk that fails half-way
   * (client gone, wrong length) is cut off again, so the session holds only whole chunks.
   * Returns the session's new size.
   */
  async appendUpload(id: string, source: Readable, options: AppendOptions = {}): Promise<number> {
    return (await this.appendChunk(id, source, options)).size;
  }

  /** `appendUpload`, telling also what the session's bytes hash to now (see NotedDigest). */
  async appendChunk(id: string, source: Readable, options: AppendOptions = {}): Promise<AppendedChunk> {
    return this.writing(() => paths.uploadData(id), () => this.withUploadLock(id, 'new-first', (claim) => this.append(claim, source, options)));
  }

  /**
   * Closes a session as the blob `expected` (the PUT), after appending `lastChunk` if the PUT
   * carries one (holding the session throughout): the bytes must hash to `expected` (and have
   * `expectedSize` bytes when given), then they are renamed into place. On a mismatch the
   * session is discarded: its bytes can never become that blob. `commit`, the owner's record
   * of the close, runs before the session is released, so that a second PUT of the
   * session (a client's retry) finds the session ended rather than its bytes gone.
   */
  async completeUpload(id: string, expected: Digest, options: CompleteUploadOptions = {}): Promise<BlobInfo> {
    // A PUT with a body mostly closes a session that had no chunk (POST then PUT): one look
    // tells, and that way writes no session files. The look is for the session's folder, not
    // its `data`: while a request (or a crashed one) holds the bytes under another name there
    // is no `data`, and a PUT that took that for a session without chunks would hash its body
    // alone (a client's retry of a PUT whose first attempt still holds the session). A body
    // that starts past byte 0 follows chunks, so it goes the other way without a look. A PUT without one closes a session its PATCHes filled (skopeo, podman and
    // docker close every push so): it claims the session at once and looks at the bytes it
    // holds then, one look where choosing the way first cost two. Found without bytes (the
    // empty blob), it is closed as a session without a chunk once the claim has gone again.
    const start = options.lastChunk?.options.start;
    if (options.lastChunk && !(start !== undefined && start > 0) && !(await this.sessionFolderExists(id))) {
      return this.completeEmptyUpload(expected, options);
    }
    const closed = await this.writing(() => paths.uploadData(id), () => this.completeHeldUpload(id, expected, options));
    return closed ?? this.completeEmptyUpload(expected, options);
  }

  /** Closes a session found holding no bytes: the PUT's body is the blob, then the close is recorded. */
  private async completeEmptyUpload(expected: Digest, options: CompleteUploadOptions): Promise<BlobInfo> {
    const blob = await this.storeEmptyUpload(expected, options);
    await options.commit?.(blob);
    return blob;
  }

  /**
   * Closes a session that holds bytes (see completeUpload); undefined, changing nothing, when
   * it holds none and the PUT carries no body.
   */
  private async completeHeldUpload(id: string, expected: Digest, options: CompleteUploadOptions): Promise<BlobInfo | undefined> {
    return this.withUploadLock(id, 'data-first', async (claim) => {
      const size = options.lastChunk ? (await this.append(claim, options.lastChunk.source, options.lastChunk.options)).size : await this.claimedBytes(claim);
      // No bytes: the folder made to claim the session goes again at release.
      if (size === undefined) return undefined;
      if (options.expectedSize !== undefined && options.expectedSize !== size) {
        throw new SizeInvalidError(`upload holds ${size} bytes, expected ${options.expectedSize}`);
      }
      const actual = await this.digestOfUpload(claim, size, expected.algorithm, options.noted);
      if (actual.value !== expected.value) {
        await options.recordEnd?.();
        // The session has ended (its record says so): bytes that will not go now are the
        // storage's leftover, not the client's answer, which stays the wrong digest.
        await this.discardUpload(claim).catch((cause: unknown) => {
          this.strandedClaims.add(claim.file);
          this.warn({ upload: id, path: this.locate(claim.file), cause: describeCause(cause) }, 'the bytes of an upload session closed with a wrong digest could not be removed; the stale-upload purge removes them');
        });
        throw new DigestInvalidError(`upload content has digest ${actual.value}, not ${expected.value}`);
      }
      // The claimed file itself becomes the blob, over whatever file is there: its bytes hash to
      // `expected` (read now, or by a digest taken earlier whose session `confirmOpen` finds
      // still open, asked while the bytes are flushed), so a push heals a blob whose bytes were
      // cut or changed, as a replica transfer of a blob recorded pending must. Nothing is
      // renamed back at release.
      const confirmOpen = actual.takenEarlier ? options.confirmOpen : undefined;
      try {
        await this.driver.move(claim.file, paths.blob(expected), { flush: true, ...(confirmOpen ? { whileFlushing: confirmOpen } : {}) });
      } catch (err) {
        // Failed after its rename (a folder's sync): the bytes are the blob's, not the session's
        // to give back, and the request fails with the storage's error, not as a lost hold.
        if (!isPathNotFound(err) && !(await this.statIfPresent(claim.file))) this.closeMovedUpload(claim);
        throw err;
      }
      this.closeMovedUpload(claim);
      const blob = { digest: expected.value, size };
      await options.commit?.(blob);
      return blob;
    });
  }

  /**
   * Closes a session that holds no bytes: the PUT's body (if any) is the whole blob, stored the
   * way a monolithic push is (staging, verify, rename), with no session files to write or
   * remove. A chunk sent to the same session at the same moment is a client breaking the
   * in-order rule; either way only bytes that hash to `expected` become the blob.
   */
  private async storeEmptyUpload(expected: Digest, options: CompleteUploadOptions): Promise<BlobInfo> {
    const chunk = options.lastChunk;
    if (chunk?.options.start !== undefined && chunk.options.start !== 0) {
      throw new UploadRangeInvalidError(`chunk starts at ${chunk.options.start} but the upload holds 0 bytes`, { offset: 0 });
    }
    const length = chunk?.options.length;
    const hashing = new HashingStream(createDigester(expected.algorithm), length, (message) => new UploadRangeInvalidError(message, { offset: 0 }));
    await this.storeVerified(expected, chunk?.source ?? Readable.from([]), hashing, options.expectedSize, {
      staging: paths.staging(randomUUID()),
      declaredSize: options.expectedSize ?? length,
      check: () => {
        if (length !== undefined && hashing.bytes !== length) {
          throw new UploadRangeInvalidError(`chunk holds ${hashing.bytes} bytes, Content-Range said ${length}`, { offset: 0 });
        }
      },
    });
    return { digest: expected.value, size: hashing.bytes };
  }

  /**
   * Streams `source` through `hashing` into the staging file `staging` and renames it into
   * place as the blob `expected` once `check` and the digest and size checks pass. A blob
   * already held with the `declaredSize` the client gave (Content-Length), if that is at least
   * REWRITTEN_BELOW_BYTES, is hashed without being written again; one whose bytes are missing,
   * or of another size, is written afresh, so a push heals a blob whose bytes were lost. Keeps
   * nothing on failure.
   */
  private async storeVerified(
    expected: Digest,
    source: Readable,
    hashing: HashingStream,
    expectedSize: number | undefined,
    options: { staging: string; declaredSize?: number | undefined; check?: () => void },
  ): Promise<void> {
    await this.writing(() => options.staging, () => this.storeVerifiedNow(expected, source, hashing, expectedSize, options));
  }

  private async storeVerifiedNow(
    expected: Digest,
    source: Readable,
    hashing: HashingStream,
    expectedSize: number | undefined,
    options: { staging: string; declaredSize?: number | undefined; check?: () => void },
  ): Promise<void> {
    const { staging, check = () => undefined, declaredSize } = options;
    // Worth a look only when a held blob would be kept: its size declared, and large enough
    // that writing it again costs more than the look costs every new blob (see REWRITTEN_BELOW_BYTES).
    const held = declaredSize !== undefined && declaredSize >= REWRITTEN_BELOW_BYTES ? await this.stat(expected) : undefined;
    if (held && held.size === declaredSize) {
      await this.consume(pipeline(source, hashing, discard()));
      check();
      this.verify(expected, hashing, expectedSize);
      return;
    }
    let writer: Writable | undefined;
    try {
      writer = await this.driver.writer(staging, { append: false });
      await this.consume(pipeline(source, hashing, writer));
      check();
      this.verify(expected, hashing, expectedSize);
      await this.driver.move(staging, paths.blob(expected));
    } catch (err) {
      if (writer) await closed(writer);
      await this.driver.delete(staging);
      throw err;
    }
  }

  /** Appends a chunk to the session `claim` holds. */
  private async append(claim: SessionClaim, source: Readable, options: AppendOptions): Promise<AppendedChunk> {
    const { id } = claim;
    const size = (await this.claimedBytes(claim)) ?? 0;
    if (options.start !== undefined && options.start !== size) {
      throw new UploadRangeInvalidError(`chunk starts at ${options.start} but the upload holds ${size} bytes`, {
        offset: size,
      });
    }
    const running = await this.runningHash(claim, size);
    // A chunk of another length than its Content-Range said is a range error either way.
    // The session is cut back to `size`, so that is the offset the client resumes from.
    const hashing = new HashingStream(running.hash.copy(), options.length, (message) => new UploadRangeInvalidError(message, { offset: size }));
    let writer: Awaited<ReturnType<StorageDriver['writer']>> | undefined;
    try {
      // Not durable: the closing PUT flushes the bytes before they become the blob. A chunk
      // acknowledged with a 202 may be lost in a machine crash (the session then reports the
      // bytes it holds, and the client resumes or starts over), but never a blob after its 201;
      // a fsync of the chunk and two of its folders cost each PATCH more than the rest of it.
      claim.holdsBytes = true;
      writer = await this.driver.writer(claim.file, { append: true, durable: false });
      await this.consume(pipeline(source, hashing, writer));
      if (options.length !== undefined && hashing.bytes !== options.length) {
        throw new UploadRangeInvalidError(`chunk holds ${hashing.bytes} bytes, Content-Range said ${options.length}`, { offset: size });
      }
    } catch (err) {
      if (writer) await closed(writer);
      // Cut back to the last whole chunk. A failed first chunk leaves no data file at all, so
      // the next first chunk creates it afresh; the folder then goes at release. A cut that
      // fails is reported, and the request fails with its own error; a first chunk's file that
      // could not go is still held, so it is given back (or stranded) at release, not left
      // under this live process's name for every later request to wait on.
      const undo = size === 0 ? this.driver.delete(claim.file) : this.driver.truncate(claim.file, size);
      const undone = await undo.then(
        () => true,
        (cause: unknown) => {
          this.warn({ upload: id, path: this.locate(claim.file), cause: describeCause(cause) }, `a failed chunk could not be cut back to ${size} bytes`);
          return false;
        },
      );
      if (size === 0 && undone) {
        claim.holdsBytes = false;
        claim.bytesIdentity = undefined;
      }
      throw err;
    }
    const newSize = size + hashing.bytes;
    if (newSize > 0) claim.placedEmpty = false;
    // The file the bytes went into, as the writer opened it: no second look by name. Only one
    // that held exactly the bytes hashed before this chunk is vouched for.
    const appendedTo = writer.appendedTo;
    if (appendedTo) claim.bytesIdentity = appendedTo.startSize === size ? appendedTo.identity : undefined;
    else claim.bytesIdentity = (await this.driver.stat(claim.file)).identity;
    this.runningHashes.set(id, { hash: hashing.hash, size: newSize, identity: claim.bytesIdentity });
    return { size: newSize, noted: this.noteOf(claim, newSize, hashing.hash) };
  }

  /**
   * The digest of the claimed session's `size` bytes, as `completeUpload` will trust it (see
   * NotedDigest): clients that open a connection per request (skopeo, podman) send the closing
   * PUT to any gateway process, and hashing a 256 MiB upload again cost that PUT more CPU than
   * the whole push. Carried by the session's owner rather than in a file beside the bytes,
   * which cost every push a write, a read and a removal.
   */
  private noteOf(claim: SessionClaim, size: number, hash: Hash): NotedDigest | undefined {
    // Smaller sessions are hashed again at their close (TRUSTED_DIGEST_MIN_BYTES): no note.
    if (size < TRUSTED_DIGEST_MIN_BYTES) return undefined;
    const file = noteFile(claim.bytesIdentity);
    return file === undefined ? undefined : { size, digest: `sha256:${hash.copy().digest('hex')}`, file };
  }

  /**
   * Removes the session's files, unless a request is writing to it right now (here or in
   * another process): then it waits for nothing and returns false, and the files stay for
   * that writer, or the stale-upload purge, to remove. A cancel must not hang on a slow
   * client's chunk, and the caller has already closed the session where it counts (its row).
   */
  async cancelUpload(id: string): Promise<boolean> {
    // Even a session with no data file yet is claimed: a first chunk may hold it, about to
    // create that file in the folder a plain delete would pull from under it.
    if (this.uploadLocks.has(id)) return false;
    try {
      await this.withUploadLock(id, 'data-first', (claim) => this.discardUpload(claim), 0);
      return true;
    } catch (err) {
      if (err instanceof BlobUploadInvalidError) return false;
      throw this.storageFault(err, () => paths.uploadDir(id));
    }
  }

  /**
   * Removes upload sessions idle for longer than `maxIdleMs` and staging files left by a crash
   * (Distribution's purgeuploads.go). Returns the sessions removed and how many staging files
   * went. `recordEnded`, the owner's record that those sessions have ended, runs before their
   * files go: no moment has a session its record calls open without its bytes, and a purge
   * broken off between the two leaves files that the next one removes.
   */
  async purgeStale(maxIdleMs: number, now = Date.now(), recordEnded?: (sessions: string[]) => Promise<void>): Promise<PurgedUploads> {
    const sessions: string[] = [];
    let stagingFiles = 0;
    for (const id of await this.driver.list(paths.uploadsRoot)) {
      if (!isUploadId(id)) continue;
      let lastSeen: number | undefined;
      try {
        const file = await this.sessionFile(id);
        // A claim's rename keeps the file's time: the claim's own time, in its name, counts if
        // later, so a long-idle session a request has just taken is not removed under it.
        if (file) lastSeen = Math.max(file.info.modifiedAt.getTime(), parseHolder(file.name)?.claimedAt ?? 0);
        // A folder without bytes is a close on its way out (or a crash in one): its age counts.
        else lastSeen = (await this.statIfPresent(paths.uploadDir(id)))?.modifiedAt.getTime();
      } catch {
        // Its files cannot be looked at now (EIO, EACCES): judged at a later purge, not removed unseen.
        continue;
      }
      // Gone since the listing: nothing of it is left to remove, and the session may well be
      // open (every session is without files before its first chunk), so it is not ended here.
      if (lastSeen === undefined) continue;
      if (now - lastSeen > maxIdleMs) sessions.push(id);
    }
    if (sessions.length > 0) await recordEnded?.(sessions);
    for (const id of sessions) {
      this.runningHashes.delete(id);
      await this.driver.delete(paths.uploadDir(id));
    }
    for (const name of await this.driver.list(paths.stagingRoot)) {
      const path = `${paths.stagingRoot}/${name}`;
      const info = await this.driver.stat(path).catch(() => undefined);
      if (info && now - info.modifiedAt.getTime() > maxIdleMs) {
        await this.driver.delete(path);
        stagingFiles++;
      }
    }
    return { sessions, stagingFiles };
  }

  /**
   * Runs a write to `relative()`, answering the storage's own failures as the client must hear
   * them (see `storageFault`).
   */
  private async writing<T>(relative: () => string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.storageFault(err, relative);
    }
  }

  /**
   * A write's failure as the client is answered. The storage's own faults (a system error that
   * a filesystem gives, or a file of the store that vanished) become a StorageFullError (no
   * space) or a StorageFailedError, naming the system's code and the path it hit, never a
   * client error such as a busy session; the rest (the client's faults, typed already) pass.
   */
  private storageFault(err: unknown, relative: () => string): unknown {
    if (err instanceof RegistryError) return err;
    let code: string;
    let where: string;
    if (err instanceof PathNotFoundError) {
      code = 'ENOENT';
      where = this.locate(err.path);
    } else {
      const system = err as NodeJS.ErrnoException | undefined;
      if (!system?.code || !(system.code in STORAGE_FAULTS)) return err;
      code = system.code;
      where = system.path ?? this.locate(relative());
    }
    const message = `the registry's storage refused a write: ${code} (${STORAGE_FAULTS[code]})`;
    return code === 'ENOSPC' || code === 'EDQUOT' ? new StorageFullError(message, code, where, err) : new StorageFailedError(message, code, where, err);
  }

  private locate(relative: string): string {
    return this.driver.locate?.(relative) ?? relative;
  }

  /**
   * The session's bytes on disk, whether idle (`data`) or held by a request (`data.<holder>`),
   * with the file's name in the session's folder: undefined when it has none (no chunk yet).
   * The common look, at an idle session, is one stat.
   */
  private async sessionFile(id: string): Promise<{ name: string; info: FileInfo } | undefined> {
    if (!isUploadId(id)) throw new BlobUploadUnknownError(`upload ${id.slice(0, 80)} is unknown`);
    const folder = paths.uploadDir(id);
    // The bytes change name between the looks when a request gives them back or takes them:
    // a look that missed them both ways looks again, a few times, rather than report none.
    for (let look = 0; look < SESSION_FILE_LOOKS; look++) {
      const idle = await this.statIfPresent(`${folder}/data`);
      if (idle) return { name: 'data', info: idle };
      const names = await this.driver.list(folder);
      const claimed = names.find((name) => name.startsWith(UPLOAD_CLAIM_PREFIX));
      if (claimed !== undefined) {
        const info = await this.statIfPresent(`${folder}/${claimed}`);
        if (info) return { name: claimed, info };
      } else if (!names.includes('data')) {
        return undefined;
      }
    }
    return undefined;
  }

  /** The file or folder at `relative`, or undefined when nothing is there; any other failure is thrown. */
  private async statIfPresent(relative: string): Promise<FileInfo | undefined> {
    try {
      return await this.driver.stat(relative);
    } catch (err) {
      if (isPathNotFound(err)) return undefined;
      throw err;
    }
  }

  /** How many bytes the claimed session holds; undefined when it has had no chunk. */
  private async claimedBytes(claim: SessionClaim): Promise<number | undefined> {
    if (!claim.holdsBytes) return undefined;
    // The empty file `placeSession` has just made: nothing to look at.
    if (claim.placedEmpty) return 0;
    const info = await this.driver.stat(claim.file);
    claim.bytesIdentity = info.identity;
    return info.size;
  }

  /** The hash kept for the session's first `size` bytes, if it was taken of the file the claim holds. */
  private keptHash(claim: SessionClaim, size: number): RunningHash | undefined {
    const kept = this.runningHashes.get(claim.id);
    return kept && kept.size === size && kept.identity === claim.bytesIdentity ? kept : undefined;
  }

  /** Whether session `id` has a folder: it has had a chunk (or a request is claiming it), and is not closed, cancelled or purged. */
  private async sessionFolderExists(id: string): Promise<boolean> {
    if (!isUploadId(id)) throw new BlobUploadUnknownError(`upload ${id.slice(0, 80)} is unknown`);
    return (await this.statIfPresent(paths.uploadDir(id))) !== undefined;
  }

  /**
   * Clears a session whose claimed file has just become the blob. Its folder is then empty, and
   * goes at release (`withUploadLock`): one call where a recursive delete costs about nine
   * (look, fail to remove, list, look and remove each file, remove), on every chunked push
   * (skopeo, podman and docker close every push this way). Anything else found in the folder
   * (a digest note of the store's earlier version) keeps it, for the stale-upload purge.
   */
  private closeMovedUpload(claim: SessionClaim): void {
    this.runningHashes.delete(claim.id);
    claim.holdsBytes = false;
  }

  /**
   * Removes the claimed session's bytes, then its folder if nothing else is in it. Not the
   * folder with all in it: once the bytes are gone, another request may place the session's
   * folder anew (a rename onto an empty folder succeeds), and a recursive delete would remove
   * that request's claim, or fail with ENOTEMPTY. What else is there (a digest note of the
   * store's earlier version) stays for the stale-upload purge.
   */
  private async discardUpload(claim: SessionClaim): Promise<void> {
    this.runningHashes.delete(claim.id);
    claim.holdsBytes = false;
    claim.folderKept = false;
    await this.driver.delete(claim.file);
    await this.driver.removeEmptyFolder?.(paths.uploadDir(claim.id));
  }

  /**
   * The digest of the claimed session's `size` bytes: taken earlier (kept, or `noted`) for a
   * session of TRUSTED_DIGEST_MIN_BYTES or more, else from the bytes now.
   */
  private async digestOfUpload(
    claim: SessionClaim,
    size: number,
    algorithm: DigestAlgorithm,
    noted: NotedDigest | undefined,
  ): Promise<{ value: string; takenEarlier: boolean }> {
    if (algorithm === 'sha256' && size >= TRUSTED_DIGEST_MIN_BYTES) {
      // A file of no known identity may be another of the same size: its bytes are read again
      // (once, at the close; its chunks still go on from the hash kept here).
      const kept = claim.bytesIdentity === undefined ? undefined : this.keptHash(claim, size);
      if (kept) return { value: `sha256:${kept.hash.copy().digest('hex')}`, takenEarlier: true };
      if (noted && noted.size === size && noted.file === noteFile(claim.bytesIdentity)) return { value: noted.digest, takenEarlier: true };
    }
    const hashing = new HashingStream(createDigester(algorithm));
    if (size > 0) await pipeline(await this.driver.reader(claim.file, { start: 0, end: size - 1 }), hashing, discard());
    return { value: `${algorithm}:${hashing.hash.digest('hex')}`, takenEarlier: false };
  }

  /** The sha256 state after `size` bytes: from memory, or rebuilt from the bytes on disk. */
  private async runningHash(claim: SessionClaim, size: number): Promise<RunningHash> {
    const kept = this.keptHash(claim, size);
    if (kept) return kept;
    const rebuilt = await this.hashOfBytes(claim, size);
    this.runningHashes.set(claim.id, rebuilt);
    return rebuilt;
  }

  /** The sha256 state after the claimed session's first `size` bytes, read from disk. */
  private async hashOfBytes(claim: SessionClaim, size: number): Promise<RunningHash> {
    const hashing = new HashingStream(createDigester('sha256'));
    if (size > 0) await pipeline(await this.driver.reader(claim.file, { start: 0, end: size - 1 }), hashing, discard());
    return { hash: hashing.hash, size, identity: claim.bytesIdentity };
  }

  private verify(expected: Digest, hashing: HashingStream, expectedSize: number | undefined): void {
    if (expectedSize !== undefined && hashing.bytes !== expectedSize) {
      throw new SizeInvalidError(`received ${hashing.bytes} bytes, expected ${expectedSize}`);
    }
    const actual = `${expected.algorithm}:${hashing.hash.digest('hex')}`;
    if (actual !== expected.value) throw new DigestInvalidError(`content has digest ${actual}, not ${expected.value}`);
  }

  /** A body that ends early (client gone) is an invalid upload, whatever the stream error says. */
  private async consume(flow: Promise<void>): Promise<void> {
    try {
      await flow;
    } catch (err) {
      if (err instanceof SizeInvalidError || err instanceof UploadRangeInvalidError) throw err;
      if (isPrematureClose(err)) throw new BlobUploadInvalidError('upload body ended before it was complete');
      throw err;
    }
  }

  /**
   * Serialises work on one session: in this process by chaining, and across the processes of
   * the region by claiming the session's bytes (`claimSession`). The cross-process part is what
   * makes the in-memory running hash trustworthy: with one writer at a time a session only
   * grows, or is cut back to a size it had, so a hash that has seen `size` bytes has seen these
   * bytes. A request finding the session busy for longer than `waitMs`, here or in another
   * process, is refused (a client sending two chunks of one session at once breaks the spec's
   * in-order rule). `order` says which way of claiming to try first (see ClaimOrder).
   */
  private async withUploadLock<T>(id: string, order: ClaimOrder, work: (claim: SessionClaim) => Promise<T>, waitMs = LOCK_WAIT_MS): Promise<T> {
    const deadline = Date.now() + waitMs;
    const previous = this.uploadLocks.get(id);
    const current = (async () => {
      // The earlier request's own release takes a moment; waiting for it here spares a poll.
      if (previous && !(await settlesBefore(previous, deadline))) throw sessionBusy(id);
      const claim = await this.claimSession(id, order, deadline);
      // The holder's heartbeat: a claim whose time keeps moving is never judged stale by age,
      // however long a slow client's chunk takes.
      const touch = this.driver.touch?.bind(this.driver);
      const heartbeat = touch && setInterval(() => void touch(claim.file).catch((cause: unknown) => this.heartbeatFailed(claim, cause)), this.staleLockMs / 4);
      heartbeat?.unref();
      try {
        if (claim.formerHolderMayWrite) await this.copyFromFormerHolder(claim);
        return await work(claim);
      } finally {
        clearInterval(heartbeat);
        await this.releaseSession(claim);
      }
    })();
    this.uploadLocks.set(id, current);
    try {
      return await current;
    } finally {
      if (this.uploadLocks.get(id) === current) this.uploadLocks.delete(id);
    }
  }

  /**
   * Takes session `id` for one request, across the processes of the region, without a lock
   * file: a session with bytes is taken by renaming its `data` to `data.<holder>` (of many
   * renames at once exactly one succeeds; the others find no `data`), and a session without any
   * by placing its folder already holding the claimed file (`placeSession`; of many placings at
   * once exactly one succeeds). So a PATCH and a PUT each make and remove no file of their own
   * for it; a close moves the claimed file straight into place as the blob. A session held by
   * another request has no `data` to take: the request looks at who holds it, takes it over by the same rename if the
   * holder is gone (`claimAbandoned`; only one of several breakers' renames succeeds), and
   * otherwise waits, until `deadline`.
   */
  private async claimSession(id: string, order: ClaimOrder, deadline: number): Promise<SessionClaim> {
    if (!isUploadId(id)) throw new BlobUploadUnknownError(`upload ${id.slice(0, 80)} is unknown`);
    const folder = paths.uploadDir(id);
    // Every round ends at the deadline check: a round that changed nothing must not repeat at
    // once, or a state no round can change (a folder holding what the store does not know)
    // would keep the request, and the process, looking at it until the purge removes it.
    for (let retryAtOnce = false; ; ) {
      const claim: SessionClaim = { id, file: paths.uploadClaimed(id, holderName(Date.now())), holdsBytes: false, folderKept: true, placedEmpty: false };
      if (order === 'new-first' && (await this.placeSession(claim))) return claim;
      if (await this.takeBytes(paths.uploadData(id), claim)) return claim;
      const names = await this.driver.list(folder);
      const held = names.find((name) => name.startsWith(UPLOAD_CLAIM_PREFIX));
      if (names.includes('data')) {
        // Released since the rename was tried: worth trying again at once, but only once in a row.
        retryAtOnce = !retryAtOnce;
      } else if (held !== undefined) {
        retryAtOnce = false;
        const file = `${folder}/${held}`;
        if ((await this.claimAbandoned(file, held)) && (await this.takeBytes(file, claim))) {
          this.runningHashes.delete(id);
          // Copied whoever held it. A holder known gone writes no more, but the file may have
          // come to it from an earlier holder judged gone only by its silence, whose takeover
          // stopped before its copy (that holder, alive, still writing through the file it
          // opened); and a give-back stopped half-way leaves the file another name (`data`, or
          // by now a blob's), through which the bytes change too. Takeovers are rare: a copy
          // each is cheap next to a blob changed after its digest was checked.
          claim.formerHolderMayWrite = true;
          return claim;
        }
      } else {
        retryAtOnce = false;
        if (await this.takeFolderWithoutBytes(claim, names)) return claim;
      }
      if (Date.now() > deadline) throw sessionBusy(id);
      if (!retryAtOnce) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Puts the bytes of a session taken over into a file of the claim's own, under its name: the
   * holder judged gone may be alive (paused, or on a host cut off a while) and still write
   * through the file it opened, wherever that file's name has gone since, into a blob even,
   * after its bytes were verified; and a file with another name (a give-back stopped half-way)
   * may be a blob's by now, which this claim's writes would change. A copy is a file nobody
   * else opened or names. Only what was in the file
   * when it was looked at is copied; the former holder's request fails (see `releaseSession`).
   * A copy that fails leaves the claim, no longer refreshed, to be taken over and copied once
   * it is stale, and the request fails with the storage's error.
   */
  private async copyFromFormerHolder(claim: SessionClaim): Promise<void> {
    const copy = paths.staging(randomUUID());
    try {
      const { size } = await this.driver.stat(claim.file);
      const writer = await this.driver.writer(copy, { append: false, durable: false });
      await pipeline(size > 0 ? await this.driver.reader(claim.file, { start: 0, end: size - 1 }) : Readable.from([]), writer);
      await this.driver.move(copy, claim.file, { durable: false });
    } catch (err) {
      claim.holdsBytes = false;
      await this.driver.delete(copy).catch(() => undefined);
      throw err;
    }
  }

  /** Renames `file` to the claim's own name; false when it is not there (another request took it). */
  private async takeBytes(file: string, claim: SessionClaim): Promise<boolean> {
    try {
      // Not durable: a machine crash may undo it, and then the claim is simply not held.
      await this.driver.move(file, claim.file, { durable: false });
    } catch (err) {
      if (isPathNotFound(err)) return false;
      throw err;
    }
    claim.holdsBytes = true;
    return true;
  }

  /**
   * Gives the session back: its bytes are renamed back to `data`, or, when it holds none (no
   * chunk yet, a first chunk that failed, bytes that became the blob), its folder goes if
   * nothing else is in it. Bytes are given back only where no `data` is: one that is there by
   * now is another writer's, and stays (see `setAside`). A claim whose file is gone was taken
   * over by a request that judged this one gone: the bytes are that request's now, the hash of
   * them here is forgotten, and this request fails (BLOB_UPLOAD_INVALID), its chunk perhaps not
   * in them. Any other failure to give the bytes back is thrown, as the storage fault it is.
   */
  private async releaseSession(claim: SessionClaim): Promise<void> {
    if (claim.holdsBytes && claim.placedEmpty) {
      await this.driver.delete(claim.file);
      claim.holdsBytes = false;
    }
    if (claim.holdsBytes) {
      try {
        // Never onto a `data` that is there by now: that is another writer's, and its bytes stay.
        await this.driver.move(claim.file, paths.uploadData(claim.id), { durable: false, replace: false });
      } catch (err) {
        if (isPathNotFound(err)) {
          // Taken over by a request that judged this one gone: the bytes are that request's now,
          // and this request's chunk may be in them or not, so it is not answered as written.
          this.runningHashes.delete(claim.id);
          throw new BlobUploadInvalidError(`upload ${claim.id} was taken over by another request while this one held it; ask for its status and resume from there`);
        }
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw await this.setAside(claim);
        // The storage's fault (EIO, EROFS, EACCES): the request fails with it, not a 202 on a
        // session every later request would be told is busy for as long as the stale limit.
        this.strandedClaims.add(claim.file);
        throw err;
      }
    } else if (claim.folderKept) {
      // The request has succeeded: a folder left behind costs only the purge's look, so it is reported, not failed for.
      await this.driver.removeEmptyFolder?.(paths.uploadDir(claim.id)).catch((cause: unknown) =>
        this.warn({ upload: claim.id, path: this.locate(paths.uploadDir(claim.id)), cause: describeCause(cause) }, 'an upload session\'s empty folder could not be removed'),
      );
    }
  }

  /**
   * Moves the claim's bytes out of the session, under `staging/` (where the purge finds them),
   * when another writer's `data` is there by now: the session keeps that writer's bytes, and
   * the error says this request's chunk is not in them.
   */
  private async setAside(claim: SessionClaim): Promise<BlobUploadInvalidError> {
    this.runningHashes.delete(claim.id);
    const aside = paths.staging(randomUUID());
    await this.driver.move(claim.file, aside, { durable: false }).catch((cause: unknown) => {
      // Left where it is, it is a claim of this live process: the next request here takes it on.
      this.strandedClaims.add(claim.file);
      this.warn({ upload: claim.id, path: this.locate(claim.file), cause: describeCause(cause) }, 'bytes of an upload session could not be set aside');
    });
    return new BlobUploadInvalidError(`upload ${claim.id} was given bytes by another writer while this request held it; the session keeps those, and this chunk is not in them`);
  }

  /** Reports a claim's failed heartbeat once: left failing, the claim may be judged stale and taken over, and the release then says so. */
  private heartbeatFailed(claim: SessionClaim, cause: unknown): void {
    if (claim.heartbeatReported) return;
    claim.heartbeatReported = true;
    this.warn({ upload: claim.id, path: this.locate(claim.file), cause: describeCause(cause) }, 'the heartbeat of a held upload session failed');
  }

  /**
   * Whether a session's claimed file `name` is left over from a holder that is gone: a process
   * of this machine and pid namespace that no longer runs (or whose pid now names a process
   * started later), an earlier run of this very process id, a claim this process could not
   * give back (`strandedClaims`), or a holder whose heartbeat stopped long ago. A pid is only checked where it means the same process: the same host, boot and
   * pid namespace. The heartbeat's age is judged with `staleLockMs` for a holder on this host,
   * whose clock is ours, and with the far longer `staleForeignLockMs` otherwise, since clocks of
   * different hosts sharing storage may disagree.
   */
  private async claimAbandoned(file: string, name: string): Promise<boolean> {
    if (this.strandedClaims.delete(file)) return true;
    // Gone: given back or taken meanwhile. Any other failure to look is the storage's, not a busy session.
    const held = await this.statIfPresent(file);
    if (!held) return false;
    const holder = parseHolder(name);
    const sameHost = holder !== undefined && holder.host === THIS_HOLDER.host;
    // A rename keeps the file's time: the claim's own time, in its name, counts if it is later.
    const lastSeen = Math.max(held.modifiedAt.getTime(), holder?.claimedAt ?? 0);
    if (Date.now() - lastSeen > (sameHost ? this.staleLockMs : this.staleForeignLockMs)) return true;
    if (!holder || !sameHost || !THIS_HOLDER.scope || holder.scope !== THIS_HOLDER.scope) return false;
    if (holder.pid === THIS_HOLDER.pid) return holder.token !== THIS_HOLDER.token;
    if (!processRuns(holder.pid)) return true;
    // The pid runs, but a process started at another time than the holder is not the holder.
    const started = processStartTime(holder.pid);
    return started !== undefined && holder.token !== started;
  }

  /**
   * Claims a session whose folder was found holding no bytes (neither `data` nor a claimed
   * file; its names `names`) by placing a new one (`placeSession`), when that is safe: when
   * the folder is gone, or when it was left so longer than `staleLockMs` ago, by a crash. A
   * fresh one is a close between moving its bytes into place and removing the folder (a retry
   * of that close must wait for its record, not find a session without bytes) or a failed
   * first chunk on its way out: the caller waits. From a stale one, what earlier versions of
   * the store left there (a digest note, stale lock files) goes by name first.
   * Anything else in it keeps it, for the stale-upload purge: a file the store does not know
   * may be someone's (an NFS `.nfs*` file held open).
   */
  private async takeFolderWithoutBytes(claim: SessionClaim, names: string[]): Promise<boolean> {
    const folder = paths.uploadDir(claim.id);
    const info = await this.statIfPresent(folder);
    if (info) {
      if (Date.now() - info.modifiedAt.getTime() <= this.staleLockMs || !this.driver.removeEmptyFolder) return false;
      for (const name of names) {
        if (name === 'sha256') await this.driver.delete(`${folder}/${name}`);
        else if (LEGACY_LOCK_NAMES.has(name) && (await this.lockFileStale(`${folder}/${name}`))) await this.driver.delete(`${folder}/${name}`);
        else return false;
      }
    }
    return this.placeSession(claim);
  }

  /**
   * Claims a session with no bytes by putting its folder in place already holding the claim's
   * file, empty: made under `staging/`, then renamed to `uploads/<id>`. The rename succeeds
   * only where no folder is, or an empty one (a close's or a crash's leftover, which no request
   * holds), and once it has, the folder is not empty: of many requests placing at once exactly
   * one succeeds, the others find it non-empty and wait, and none ever holds a session by an
   * empty folder that another could remove or replace under it. False when a folder with
   * something in it is there.
   */
  private async placeSession(claim: SessionClaim): Promise<boolean> {
    const staged = paths.staging(randomUUID());
    // The folder first: made by the file's create instead, it cost a refused open every time.
    await this.driver.createFolder(staged);
    await this.driver.createExclusive(`${staged}/${claim.file.slice(claim.file.lastIndexOf('/') + 1)}`);
    try {
      // Not durable: a machine crash may undo it, and then the session simply has no bytes.
      await this.driver.move(staged, paths.uploadDir(claim.id), { durable: false });
    } catch (err) {
      await this.driver.delete(staged);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
      throw err;
    }
    claim.holdsBytes = true;
    claim.placedEmpty = true;
    this.runningHashes.delete(claim.id);
    return true;
  }

  /** Whether the earlier version's lock file at `file` is untouched for longer than `staleLockMs` (its holder's heartbeat stopped). */
  private async lockFileStale(file: string): Promise<boolean> {
    const info = await this.statIfPresent(file);
    return !info || Date.now() - info.modifiedAt.getTime() > this.staleLockMs;
  }
}

/** The system errors that are the storage's fault when a write meets them, in words. */
const STORAGE_FAULTS: Readonly<Record<string, string>> = {
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'input/output error',
  ENOENT: 'a file or folder of the store is missing',
  ENOTDIR: 'a path of the store is not a folder',
  EISDIR: 'a path of the store is a folder',
  EFBIG: 'file too large',
  ESTALE: 'stale file handle',
  EMFILE: 'too many open files in this process',
  ENFILE: 'too many open files in the system',
};

/** Which process this is: host, boot and pid namespace, pid and start. */
interface ProcessIdentity {
  host: string;
  /**
   * Boot id and pid namespace: where `pid` names the same process. Empty where they cannot be
   * read (not Linux): the pid is then never trusted.
   */
  scope: string;
  pid: number;
  /**
   * The process's start time (Linux, in clock ticks since boot): tells this run of a pid from an
   * earlier one, and is the same for every thread and module copy of one process. Random where
   * it cannot be read, which `scope` then rules out of any pid check anyway.
   */
  token: string;
}

const THIS_PROCESS: ProcessIdentity = {
  host: hostname(),
  scope: processScope(),
  pid: process.pid,
  token: processStartTime(process.pid) ?? randomUUID(),
};

/**
 * Where a noted digest is trusted (see NotedDigest): this host in this boot. Empty where the
 * boot cannot be read (not Linux): then nothing is noted.
 */
const NOTE_SCOPE = THIS_PROCESS.scope ? `${THIS_PROCESS.host} ${THIS_PROCESS.scope.split(' ')[0]}` : '';

/** NotedDigest.file for the file of identity `identity`, in this boot; undefined where either is unknown. */
function noteFile(identity: string | undefined): string | undefined {
  return identity && NOTE_SCOPE ? shortHash(`${identity} ${NOTE_SCOPE}`) : undefined;
}

/** Which way of claiming a session to try first: placing a new one (a chunk, mostly a session's first), or taking its bytes (a close or cancel of a filled one). */
type ClaimOrder = 'new-first' | 'data-first';

/**
 * The lock files of the store's earlier version, which held a session by a lock file in its
 * folder: a crash could leave a folder holding only these.
 */
const LEGACY_LOCK_NAMES: ReadonlySet<string> = new Set(['lock', 'lock.break']);

/**
 * Who holds a session, as the name of its claimed file says (`data.<holder>`, see
 * `claimAbandoned`): the process's identity, the host and the scope (boot and pid namespace)
 * hashed to keep the name short and plain, and when the claim was made.
 */
interface ClaimHolder {
  claimedAt: number;
  pid: number;
  token: string;
  /** A hash of the host name. */
  host: string;
  /** A hash of the boot id and pid namespace; empty where they cannot be read (the pid is then never trusted). */
  scope: string;
}

const THIS_HOLDER: Omit<ClaimHolder, 'claimedAt'> = {
  pid: THIS_PROCESS.pid,
  // A random token (where the start time cannot be read) as plain hex.
  token: THIS_PROCESS.token.replaceAll('-', ''),
  host: shortHash(THIS_PROCESS.host),
  scope: THIS_PROCESS.scope ? shortHash(THIS_PROCESS.scope) : '',
};

/** `<claimed at, ms base 36>.<pid>.<start>.<host hash>.<scope hash or "-">`: what follows `data.` while this process holds a session. */
function holderName(claimedAt: number): string {
  return `${claimedAt.toString(36)}.${THIS_HOLDER.pid}.${THIS_HOLDER.token}.${THIS_HOLDER.host}.${THIS_HOLDER.scope || '-'}`;
}

const HOLDER_NAME = /^data\.([0-9a-z]{1,12})\.(\d{1,10})\.([0-9a-f]{1,40})\.([0-9a-f]{16})\.([0-9a-f]{16}|-)$/;

/** The holder a claimed file's name gives; undefined for a name this store would not make. */
function parseHolder(name: string): ClaimHolder | undefined {
  const match = HOLDER_NAME.exec(name);
  if (!match) return undefined;
  return { claimedAt: parseInt(match[1]!, 36), pid: Number(match[2]), token: match[3]!, host: match[4]!, scope: match[5] === '-' ? '' : match[5]! };
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** When the process started, from /proc/<pid>/stat (field 22), or undefined. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** This process's boot id and pid namespace (Linux), or '' when either cannot be read. */
function processScope(): string {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const namespace = readlinkSync('/proc/self/ns/pid');
    return boot && namespace ? `${boot} ${namespace}` : '';
  } catch {
    return '';
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether `err` says a path is missing: a PathNotFoundError of this module or of another copy
 * of it in the process (a driver built by a second copy of the package throws its own class).
 */
function isPathNotFound(err: unknown): boolean {
  return err instanceof PathNotFoundError || (err as Error | undefined)?.name === 'PathNotFoundError';
}

/** A failure's cause in a few words, for a warning: the system's code where it has one. */
function describeCause(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

function sessionBusy(id: string): BlobUploadInvalidError {
  return new BlobUploadInvalidError(`upload ${id} is being written by another request; send chunks one at a time, in order`);
}

/** Whether `promise` settles (either way) before the clock reaches `deadline`. */
async function settlesBefore(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves once `writer` has let go of its file. A writer that failed may still be opening it
 * (making the folder it needs first) when the pipeline reports the failure: removing the file
 * before then would leave the one it is about to create behind.
 */
function closed(writer: Writable): Promise<void> {
  return writer.closed ? Promise.resolve() : new Promise((resolve) => writer.once('close', () => resolve()));
}

function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

function isPrematureClose(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || (err as Error | undefined)?.message === 'aborted';
}

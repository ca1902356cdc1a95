import type { Readable } from 'node:stream';
import {
  BlobUploadUnknownError,
  DigestInvalidError,
  NameUnknownError,
  assertRepositoryName,
  isDigest,
  parseDigest,
  type Digest,
} from '@meridian/oci';
import type { AppendOptions, BlobStore } from '@meridian/blobstore';
import { localClock, type BlobState, type Metadata } from '@meridian/metadata';
import type { BlobService } from './blobs.js';
import { UPLOAD_MAX_IDLE_BOUND_MS, type UploadState, type UploadStateSigner } from './upload-state.js';
import { inSpan } from '@meridian/telemetry';

/** How far apart the clocks of a region's gateways and its Postgres may be, for forgetting ended sessions. */
const CLOCK_MARGIN_MS = 3600_000;

export interface UploadSession {
  state: UploadState;
  /** Signed state for the Location URL. */
  token: string;
  /** Bytes received so far. */
  size: number;
}

export interface StoredBlob {
  digest: string;
  size: number;
}

/**
 * The upload state machine of distribution-spec v1.1 "Pushing blobs": monolithic POST, POST-PUT,
 * chunked POST-PATCH…-PUT, status, cancel, and cross-repository mount. Bytes are verified by the
 * blob store before any metadata names them.
 */
export class UploadService {
  constructor(
    private readonly metadata: Metadata,
    private readonly store: BlobStore,
    private readonly signer: UploadStateSigner,
    /** Judges whether the region holds a blob it would mount. */
    private readonly blobs: BlobService,
    /** This region's name: the origin of the blob links made here, which replicate. */
    private readonly region: string,
  ) {}

  /**
   * POST without a digest: opens a session, writing nothing. Its signed state is the session
   * (any gateway of the region can continue it), open until its record says it has ended
   * (`metadata.uploads`) or its token has been idle too long; the store writes nothing until the
   * first chunk. The repository is not made here either: it appears with its first blob, as in
   * Distribution, whose catalog lists no repository that only holds upload sessions.
   */
  start(repository: string): UploadSession {
    assertRepositoryName(repository);
    const state = { repository, id: this.store.createUpload(), startedAt: new Date().toISOString() };
    return { state, token: this.signer.sign(state), size: 0 };
  }

  /** POST with `?digest=`: the whole blob in one request. */
  async putMonolithic(repository: string, digestText: string, body: Readable, contentLength?: number): Promise<StoredBlob> {
    assertRepositoryName(repository);
    const digest = parseDigest(digestText);
    const stored = await inSpan('blob.write', blobWrite(repository, 'monolithic', digest.value), () => this.store.put(digest, body, contentLength));
    await this.link(repository, stored);
    return stored;
  }

  /**
   * POST with `?mount=&from=`: links a blob the region already holds, its bytes confirmed as a
   * pull confirms them. Without `from`, any repository of the region may be the source
   * (distribution-spec v1.1 allows the registry to choose). Returns undefined when the blob
   * cannot be mounted (not linked there, pending, or its bytes lost): the caller opens a session,
   * and the client's upload stores the bytes again. When identity lands, the access guard must
   * limit a `from`-less mount to repositories the caller may pull, or knowing a digest would be
   * enough to read it.
   */
  async mount(repository: string, digestText: string, from: string | undefined): Promise<StoredBlob | undefined> {
    assertRepositoryName(repository);
    // "unable to mount … SHOULD return 202" (distribution-spec v1.1 "Mounting a blob"), a bad
    // digest included: the client then simply uploads.
    if (!isDigest(digestText)) return undefined;
    const digest = parseDigest(digestText);
    let found: { size: number; state: BlobState } | undefined;
    if (from !== undefined) {
      if (!isValidName(from)) return undefined;
      found = (await this.metadata.blobs.findInRepository(from, digest.value)).found;
    } else {
      const linked = await this.metadata.blobs.findLinkedAnywhere(digest.value);
      found = linked && { size: linked.size, state: 'present' };
    }
    if (!found || !(await this.blobs.confirm(digest, found.size, found.state))) return undefined;
    const blob = { digest: digest.value, size: found.size };
    await this.link(repository, blob);
    return blob;
  }

  resume(repository: string, id: string, token: string | undefined): UploadState {
    assertRepositoryName(repository);
    return this.signer.verify(token, repository, id);
  }

  /** GET on the session: how many bytes it holds. */
  async status(state: UploadState): Promise<UploadSession> {
    return { state, token: this.signer.sign(state), size: await this.heldBytesOfOpenSession(state.id) };
  }

  /**
   * PATCH: appends one chunk, in order. Whether the session is open is asked once, after the
   * chunk (`closedMeanwhile`), not before as well: a chunk sent to a session closed earlier is
   * written, removed and refused just as one whose session closes while it flows, and the
   * chunks of open sessions, which are nearly all of them, cost one query rather than two.
   */
  async append(state: UploadState, chunk: Readable, options: AppendOptions): Promise<UploadSession> {
    try {
      const { size, noted } = await inSpan('blob.write', blobWrite(state.repository, 'chunk'), () => this.store.appendChunk(state.id, chunk, options));
      // The closing PUT may reach another process: the state it brings back says what the bytes hash to.
      // A chunk that notes nothing, after none that did (a small session, which the store hashes at
      // its close; most are), leaves the state as it came: the answer names the session with the token
      // it came with unless that is due for renewal (UploadStateSigner `sign`), sparing an HMAC.
      const next: UploadState =
        noted === undefined && state.noted === undefined ? state : { repository: state.repository, id: state.id, startedAt: state.startedAt, ...(noted ? { noted } : {}) };
      return { state: next, token: this.signer.sign(next), size };
    } finally {
      // Whether the chunk went in or failed; a 404 from here replaces either outcome.
      await this.closedMeanwhile(state.id);
    }
  }

  /**
   * A DELETE or the closing PUT may end a session while a chunk flows into it (from another
   * gateway, even), and leave its files to that writer. Its record says so: the files then
   * belong to a session nobody will close, so they are removed and the client is told,
   * whether the chunk itself went in or failed.
   */
  private async closedMeanwhile(id: string): Promise<void> {
    if (!(await this.metadata.uploads.isClosed(id))) return;
    await this.store.cancelUpload(id);
    throw new BlobUploadUnknownError(`upload ${id} was closed while the chunk was written`);
  }

  /** PUT with `?digest=`: the optional last chunk, then verification and the blob's commit. */
  async complete(state: UploadState, digestText: string | undefined, lastChunk?: { body: Readable; options: AppendOptions }): Promise<StoredBlob> {
    if (!digestText) throw new DigestInvalidError('the digest query parameter is required to close an upload');
    const digest: Digest = parseDigest(digestText);
    // Whether the session was open when a wrong digest ended it (`recordEnd`), if it held bytes.
    let openWhenEnded: boolean | undefined;
    try {
      return await inSpan('blob.write', blobWrite(state.repository, 'complete', digest.value), () =>
        this.store.completeUpload(state.id, digest, {
          ...(lastChunk ? { lastChunk: { source: lastChunk.body, options: lastChunk.options } } : {}),
          noted: state.noted,
          confirmOpen: async () => {
            if (await this.metadata.uploads.isClosed(state.id)) throw new BlobUploadUnknownError(`upload ${state.id} is not open`);
          },
          recordEnd: async () => {
            openWhenEnded = await this.metadata.uploads.close(state.id);
          },
          // Recorded while the session is still held: a retry of this PUT, waiting for the
          // session, then finds it ended (404), not its bytes gone (a wrong digest that
          // would end the session before this statement commits, failing both PUTs).
          commit: (stored) => this.closeAsBlob(state, stored),
        }),
      );
    } catch (err) {
      // A wrong digest ends the session (its bytes are already discarded), unless it had ended
      // already: a PUT that found neither bytes nor a body may be the retry of one that closed
      // it, so the one statement that records the end also says whether it was open (404 if not).
      // Any refusal of a session that is not open at all is BLOB_UPLOAD_UNKNOWN, whatever the body was.
      const open =
        err instanceof DigestInvalidError ? (openWhenEnded ?? (await this.metadata.uploads.close(state.id))) : !(await this.metadata.uploads.isClosed(state.id));
      if (!open) {
        // Closed by another request while this body flowed; what it wrote is nobody's now.
        await this.store.cancelUpload(state.id);
        throw new BlobUploadUnknownError(`upload ${state.id} is not open`);
      }
      throw err;
    }
  }

  /**
   * Closes the session as the verified blob: the end, the blob, its link and the outbox row in
   * one statement, one WAL flush. The session is checked here rather than before the bytes flow,
   * so an ordinary PUT costs no extra round trip; a PUT to a cancelled or closed session leaves
   * only verified bytes that no repository links. The first blob of a repository's first push
   * finds no repository and changes nothing: the repository is made, and the same statement
   * runs again, so the session never ends without its blob linked.
   */
  private async closeAsBlob(state: UploadState, stored: StoredBlob): Promise<void> {
    const closeAsBlob = () => this.metadata.uploads.completeAsBlob(state.id, state.repository, stored.digest, stored.size, localClock(this.region).now);
    let completion = await closeAsBlob();
    if (completion === 'repository-unknown') {
      await this.metadata.repositories.ensure(state.repository);
      completion = await closeAsBlob();
    }
    if (completion === 'not-open') throw new BlobUploadUnknownError(`upload ${state.id} is not open`);
    if (completion === 'repository-unknown') throw new NameUnknownError(`repository ${state.repository} was deleted while a blob was linked into it`);
  }

  /** DELETE on the session. */
  async cancel(state: UploadState): Promise<void> {
    if (!(await this.metadata.uploads.close(state.id))) throw new BlobUploadUnknownError(`upload ${state.id} is not open`);
    // The session is closed now (its record says so). A chunk still being written is no reason to
    // wait or fail: cancelUpload then leaves the files to that writer, which finds the session ended
    // and removes them (see `append`), or to the stale-upload purge.
    await this.store.cancelUpload(state.id);
  }

  /** The bytes an open session holds; BLOB_UPLOAD_UNKNOWN once its record says it has ended. */
  private async heldBytesOfOpenSession(id: string): Promise<number> {
    const [closed, size] = await Promise.all([this.metadata.uploads.isClosed(id), this.store.uploadSize(id)]);
    if (closed) throw new BlobUploadUnknownError(`upload ${id} is not open`);
    return size;
  }

  /**
   * Records sessions idle past `maxIdleMs` ended, then purges their files (see BlobStore.purgeStale), so that
   * a token of theirs still good (one renewed by a status request, which leaves the files'
   * times alone) is refused rather than continuing a session with its bytes gone. Forgets
   * sessions that ended before any token of theirs could still be accepted, anywhere in the
   * region; returns how many sessions' files and staging files went.
   */
  async purgeStale(maxIdleMs: number): Promise<number> {
    const purged = await this.store.purgeStale(maxIdleMs, Date.now(), async (sessions) => {
      await this.metadata.uploads.closeAll(sessions);
    });
    // No token outlives the bound after its issue (whatever idle limit its issuer had), and none
    // is issued once the session has ended; the margin allows for clocks apart.
    await this.metadata.uploads.forgetClosedBefore(new Date(Date.now() - UPLOAD_MAX_IDLE_BOUND_MS - CLOCK_MARGIN_MS));
    return purged.sessions.length + purged.stagingFiles;
  }

  /**
   * Links a verified blob into the repository and records the link for replication, in one
   * statement; a repository not known yet (the first blob of its first push) is made first.
   */
  private async link(repository: string, blob: StoredBlob): Promise<void> {
    const linkLocal = () => this.metadata.blobs.linkLocal(repository, blob.digest, blob.size, localClock(this.region).now);
    if (await linkLocal()) return;
    await this.metadata.repositories.ensure(repository);
    if (!(await linkLocal())) throw new NameUnknownError(`repository ${repository} was deleted while a blob was linked into it`);
  }
}

function isValidName(name: string): boolean {
  try {
    assertRepositoryName(name);
    return true;
  } catch {
    return false;
  }
}


/** A blob write's span: which repository, how (a whole blob, a chunk, the closing PUT), and the digest when known. */
function blobWrite(repository: string, how: 'monolithic' | 'chunk' | 'complete', digest?: string) {
  return { attributes: { 'meridian.repository': repository, 'meridian.upload': how, ...(digest ? { 'meridian.digest': digest } : {}) } };
}

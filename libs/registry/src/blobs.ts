import type { Writable } from 'node:stream';
import { BlobUnknownError, NameUnknownError, assertRepositoryName, parseDigest, type Digest } from '@meridian/oci';
import type { BlobCheck, BlobStore } from '@meridian/blobstore';
import { localClock, type BlobState, type Metadata, type MetadataChange } from '@meridian/metadata';
import type { LookupCache } from './lookup-cache.js';
import type { PeerBlobHolder, ReadThrough } from './read-through.js';
import { ANONYMOUS, writeEvent, type Actor } from './actor.js';

export interface BlobDescription {
  digest: Digest;
  size: number;
  /** Set when the region lacks the bytes and peers hold them: `send` fills the blob from them. */
  fromPeers?: { repository: string; holders: readonly PeerBlobHolder[] };
}

/** Where the domain layer reports what an operator must hear of (pino's Logger is one). */
export interface RegistryLogger {
  error(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/**
 * Reading and deleting blobs through a repository (distribution-spec "Pulling blobs", "Deleting
 * blobs"), and the one judgement of whether the region holds a blob.
 *
 * The regional metadata records each blob as present or pending (libs/metadata blobs.ts), but
 * a blob is never reported present on the metadata's word alone: its bytes are confirmed in the
 * store (one stat) every time. Bytes found missing, of another size or unreadable turn the blob
 * pending; bytes found back turn it present again. Caches hold sizes, never "the bytes are
 * there", so no cache can make a lost blob look present.
 */
export class BlobService {
  constructor(
    private readonly metadata: Metadata,
    private readonly store: BlobStore,
    private readonly cache: LookupCache,
    private readonly log: RegistryLogger,
    /** This region's name: the origin of the unlinks made here, which replicate. */
    private readonly region: string,
    /** The region's peers, when it is part of a cluster: a miss here is filled from them. */
    private readonly readThrough?: ReadThrough,
  ) {}

  /**
   * The blob as `repository` may serve it, its bytes confirmed in the store now. The single
   * place a blob miss is decided: in a cluster, a blob the region lacks (recorded pending, or
   * not recorded here yet) is described from the peers that hold it, and `send` fills it.
   */
  async describe(repository: string, digestText: string): Promise<BlobDescription> {
    assertRepositoryName(repository);
    const digest = parseDigest(digestText);
    const cached = this.cache.getBlobSize(repository, digest.value);
    if (cached !== undefined) {
      if (!(await this.confirm(digest, cached, 'present'))) return this.fromPeers(repository, digest, cached, notIn(repository, digest));
      this.readThrough?.touch(digest.value);
      return { digest, size: cached };
    }
    const readAt = this.cache.currentGeneration(repository);
    const lookup = await this.metadata.blobs.findInRepository(repository, digest.value);
    if (lookup.repositoryId === undefined) {
      return this.fromPeers(repository, digest, undefined, new NameUnknownError(`repository ${repository} is not known`));
    }
    if (!lookup.found || !(await this.confirm(digest, lookup.found.size, lookup.found.state))) {
      return this.fromPeers(repository, digest, lookup.found?.size, notIn(repository, digest));
    }
    this.cache.setBlobSize(repository, digest.value, lookup.found.size, readAt);
    this.readThrough?.touch(digest.value);
    return { digest, size: lookup.found.size };
  }

  /** Writes bytes `range.start`..`range.end` (inclusive) of a described blob into `destination`. */
  async send(blob: BlobDescription, range: { start: number; end: number }, destination: Writable): Promise<void> {
    if (blob.fromPeers && this.readThrough) {
      this.readThrough.countServed('peer');
      await this.readThrough.serve(blob.fromPeers.repository, blob, blob.fromPeers.holders, range, destination);
      return;
    }
    try {
      if (this.readThrough) {
        this.readThrough.countServed('local');
        await this.readThrough.pinnedWhile(blob.digest.value, () => this.store.copyTo(blob.digest, range, destination));
      } else {
        await this.store.copyTo(blob.digest, range, destination);
      }
    } catch (err) {
      // Lost since describe confirmed it (nothing has been sent yet): recorded as describe would.
      if (err instanceof BlobUnknownError) await this.confirm(blob.digest, blob.size, 'present');
      throw err;
    }
  }

  /**
   * A blob the region lacks, as the peers holding it describe it; `miss` when none does (or the
   * region is not part of a cluster). `localSize` is the size recorded here when the repository
   * links the blob already.
   */
  private async fromPeers(repository: string, digest: Digest, localSize: number | undefined, miss: Error): Promise<BlobDescription> {
    if (!this.readThrough) throw miss;
    const holders = await this.readThrough.holders(repository, digest.value, localSize);
    if (holders.length === 0) throw miss;
    return { digest, size: localSize ?? holders[0]!.size, fromPeers: { repository, holders } };
  }

  /**
   * Whether the region holds the bytes of a blob its metadata records with `size` in `state`,
   * the record brought in line with the store: bytes missing, of another size or unreadable
   * turn a present blob pending (logged once, by whichever request finds it first, and
   * announced, so every gateway of the region drops what it cached); bytes found back turn a
   * pending blob present.
   */
  async confirm(digest: Digest, size: number, state: BlobState): Promise<boolean> {
    const check = await this.store.confirm(digest, size);
    if (check.held) {
      if (state === 'pending') await this.recordFound(digest);
      return true;
    }
    if (state === 'present') await this.recordLost([{ digest, check }]);
    return false;
  }

  /**
   * Confirms that the store has bytes for each of `digests` (the blobs a pushed manifest names),
   * recording any it has lost as describe does. The manifest's own check then finds such a blob
   * pending (MANIFEST_BLOB_UNKNOWN), and the client pushes it again.
   */
  async confirmReferenced(digests: readonly string[]): Promise<void> {
    const checks = await Promise.all(
      [...new Set(digests)].map(async (text) => {
        const digest = parseDigest(text);
        return { digest, check: await this.store.confirm(digest) };
      }),
    );
    // Digests of blobs never pushed are among these too: one statement records the lot.
    await this.recordLost(checks.filter((loss): loss is Loss => !loss.check.held));
  }

  /**
   * Unlinks the blob from the repository; its bytes stay for other repositories until GC.
   * Audited as `actor`'s, in its transaction.
   */
  async delete(repository: string, digestText: string, actor: Actor = ANONYMOUS): Promise<void> {
    assertRepositoryName(repository);
    const digest = parseDigest(digestText);
    const change: MetadataChange = { kind: 'blob', repository, digest: digest.value };
    await this.metadata.transaction(async (tx) => {
      const repositoryId = await tx.repositories.requireId(repository);
      if (!(await tx.blobs.unlink(repositoryId, digest.value))) {
        throw new BlobUnknownError(`blob ${digest.value} is not in ${repository}`, { digest: digest.value });
      }
      await tx.outbox.append([{ hlc: localClock(this.region).now, body: { kind: 'blob.unlink', repository, digest: digest.value } }]);
      await tx.audit.append([writeEvent(this.region, actor, 'delete', `${repository}@${digest.value}`, { blob: true })]);
      await tx.announce([change]);
    });
    this.cache.invalidate(change);
  }

  /**
   * Turns the present blobs among `losses` pending, and tells every gateway of the region (as a
   * blob delete does) to drop the lookups they cached for them. A failure to record it is
   * logged and otherwise ignored: the request still answers that the blob is not here, and the
   * next one to look records it.
   */
  private async recordLost(losses: readonly Loss[]): Promise<void> {
    if (losses.length === 0) return;
    let lost: Map<string, string[]>;
    try {
      lost = await this.metadata.transaction(async (tx) => {
        const turned = await tx.blobs.markPending(losses.map((loss) => loss.digest.value));
        await tx.announce([...turned].flatMap(([digest, repositories]) => repositories.map((repository) => blobChange(repository, digest))));
        return turned;
      });
    } catch (err) {
      for (const { digest, check } of losses) {
        this.log.error(
          { digest: digest.value, path: check.path, problem: check.problem, err },
          `blob ${digest.value} lost its bytes (${check.problem}: ${check.path}), and recording that failed`,
        );
      }
      return;
    }
    // A blob left out was not present: another request found the loss first and said so.
    for (const { digest, check } of losses) {
      const repositories = lost.get(digest.value);
      if (!repositories) continue;
      for (const repository of repositories) this.cache.invalidate(blobChange(repository, digest.value));
      this.log.error(
        { digest: digest.value, path: check.path, problem: check.problem, repositories: repositories.length },
        `blob ${digest.value} lost its bytes (${check.problem}: ${check.path}); it is no longer served, and a push of it stores it again`,
      );
    }
  }

  private async recordFound(digest: Digest): Promise<void> {
    try {
      if (await this.metadata.blobs.markPresent(digest.value)) {
        this.log.info({ digest: digest.value }, `blob ${digest.value} has its bytes in the store again; it is served again`);
      }
    } catch (err) {
      // The bytes are there, so serving them is right; the next lookup records it.
      this.log.error({ digest: digest.value, err }, `blob ${digest.value} has its bytes again, and recording that failed`);
    }
  }
}

function notIn(repository: string, digest: Digest): BlobUnknownError {
  return new BlobUnknownError(`blob ${digest.value} is not in ${repository}`, { digest: digest.value });
}

function blobChange(repository: string, digest: string): MetadataChange {
  return { kind: 'blob', repository, digest };
}

/** A blob whose bytes the store was found not to hold, and what was found instead. */
interface Loss {
  digest: Digest;
  check: Exclude<BlobCheck, { held: true }>;
}

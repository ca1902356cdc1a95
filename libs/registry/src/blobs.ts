import type { Writable } from 'node:stream';
import { BlobUnknownError, NameUnknownError, assertRepositoryName, parseDigest, type Digest } from '@meridian/oci';
import type { BlobStore } from '@meridian/blobstore';
import type { Metadata, MetadataChange } from '@meridian/metadata';
import type { LookupCache } from './lookup-cache.js';

export interface BlobDescription {
  digest: Digest;
  size: number;
}

/** Reading and deleting blobs through a repository (distribution-spec "Pulling blobs", "Deleting blobs"). */
export class BlobService {
  constructor(
    private readonly metadata: Metadata,
    private readonly store: BlobStore,
    private readonly cache: LookupCache,
  ) {}

  /**
   * The blob as `repository` may serve it. The single place a blob miss is decided: the
   * planned nearest-region read-through fetches from a peer here.
   */
  async describe(repository: string, digestText: string): Promise<BlobDescription> {
    assertRepositoryName(repository);
    const digest = parseDigest(digestText);
    const cached = this.cache.getBlobSize(repository, digest.value);
    if (cached !== undefined) return { digest, size: cached };
    const readAt = this.cache.currentGeneration(repository);
    const lookup = await this.metadata.blobs.findInRepository(repository, digest.value);
    if (lookup.repositoryId === undefined) throw new NameUnknownError(`repository ${repository} is not known`);
    if (!lookup.found) throw new BlobUnknownError(`blob ${digest.value} is not in ${repository}`, { digest: digest.value });
    this.cache.setBlobSize(repository, digest.value, lookup.found.size, readAt);
    return { digest, size: lookup.found.size };
  }

  /** Writes bytes `range.start`..`range.end` (inclusive) of a described blob into `destination`. */
  async send(blob: BlobDescription, range: { start: number; end: number }, destination: Writable): Promise<void> {
    await this.store.copyTo(blob.digest, range, destination);
  }

  /** Unlinks the blob from the repository; its bytes stay for other repositories until GC. */
  async delete(repository: string, digestText: string): Promise<void> {
    assertRepositoryName(repository);
    const digest = parseDigest(digestText);
    const change: MetadataChange = { kind: 'blob', repository, digest: digest.value };
    await this.metadata.transaction(async (tx) => {
      const repositoryId = await tx.repositories.requireId(repository);
      if (!(await tx.blobs.unlink(repositoryId, digest.value))) {
        throw new BlobUnknownError(`blob ${digest.value} is not in ${repository}`, { digest: digest.value });
      }
      await tx.announce([change]);
    });
    this.cache.invalidate(change);
  }
}

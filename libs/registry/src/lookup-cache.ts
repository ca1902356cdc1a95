import { LRUCache } from 'lru-cache';
import type { MetadataChange } from '@meridian/metadata';

/**
 * A repository's whole tag list, sorted in byte order, for paging without a query per page;
 * `tags` is undefined when the repository has too many to hold (page in the database).
 */
export interface CachedTagList {
  repositoryId: number;
  tags?: readonly string[];
}

export interface CachedManifest {
  digest: string;
  mediaType: string;
  payload: Buffer;
}

/**
 * What the pull path looked up recently: manifests by tag or digest, blob sizes per
 * repository, and whole tag lists. Entries are dropped when a change to them commits: at once in the gateway that
 * wrote it, and in the region's other gateways when the change's NOTIFY arrives (a window of
 * milliseconds). If the notification connection is lost, everything is dropped. The TTL bounds
 * what any missed notification could cost.
 */
export class LookupCache {
  private readonly manifests: LRUCache<string, CachedManifest>;
  private readonly blobSizes: LRUCache<string, number>;
  private readonly tagLists: LRUCache<string, CachedTagList>;
  private readonly enabled: boolean;
  /**
   * A lookup notes its repository's generation before reading the database and may store its
   * result only if that has not moved, so a read that raced a write never caches the old state.
   * Generations are per repository, so a steady stream of pushes to one repository does not
   * stop the caching of reads of every other. Stamps come from one counter: a repository's
   * generation is the later of its last change and the last clear. A repository evicted from
   * `changedAt` only makes a racing read not store (its stamp drops back), never store wrongly.
   */
  private counter = 0;
  private clearedAt = 0;
  private readonly changedAt = new LRUCache<string, number>({ max: 10_000 });
  /** While change notifications may be missed (listener reconnecting), nothing is stored. */
  private suspended = false;

  constructor(options: { maxEntries: number; ttlMs?: number }) {
    this.enabled = options.maxEntries > 0;
    const max = Math.max(1, options.maxEntries);
    const ttl = options.ttlMs ?? 60_000;
    this.manifests = new LRUCache({
      max,
      ttl,
      // Payloads are at most 4 MiB; bound the bytes too, not just the count.
      maxSize: 256 * 1024 * 1024,
      sizeCalculation: (entry) => entry.payload.byteLength + 200,
    });
    this.blobSizes = new LRUCache({ max, ttl });
    this.tagLists = new LRUCache({
      max,
      ttl,
      // Bounded by the tags held in all, whatever the number of repositories.
      maxSize: Math.max(1, options.maxEntries) * 20,
      sizeCalculation: (entry) => (entry.tags?.length ?? 0) + 1,
    });
  }

  getManifest(repository: string, reference: string): CachedManifest | undefined {
    return this.manifests.get(key(repository, reference));
  }

  /** The generation to pass to a set* call for `repository` made after the database read that follows. */
  currentGeneration(repository: string): number {
    return Math.max(this.clearedAt, this.changedAt.get(repository) ?? 0);
  }

  setManifest(repository: string, reference: string, manifest: CachedManifest, readAt: number): void {
    if (this.storing(repository, readAt)) this.manifests.set(key(repository, reference), manifest);
  }

  getBlobSize(repository: string, digest: string): number | undefined {
    return this.blobSizes.get(key(repository, digest));
  }

  setBlobSize(repository: string, digest: string, size: number, readAt: number): void {
    if (this.storing(repository, readAt)) this.blobSizes.set(key(repository, digest), size);
  }

  getTagList(repository: string): CachedTagList | undefined {
    return this.tagLists.get(repository);
  }

  setTagList(repository: string, list: CachedTagList, readAt: number): void {
    if (this.storing(repository, readAt)) this.tagLists.set(repository, list);
  }

  invalidate(change: MetadataChange): void {
    this.changedAt.set(change.repository, ++this.counter);
    switch (change.kind) {
      case 'tag':
        this.manifests.delete(key(change.repository, change.tag));
        this.tagLists.delete(change.repository);
        break;
      case 'manifest':
        this.manifests.delete(key(change.repository, change.digest));
        break;
      case 'blob':
        this.blobSizes.delete(key(change.repository, change.digest));
        break;
    }
  }

  /** Drops everything and stores nothing more until resume(): notifications may be missed. */
  suspend(): void {
    this.suspended = true;
    this.clear();
  }

  resume(): void {
    this.clear();
    this.suspended = false;
  }

  private storing(repository: string, readAt: number): boolean {
    return this.enabled && !this.suspended && readAt === this.currentGeneration(repository);
  }

  clear(): void {
    this.clearedAt = ++this.counter;
    this.changedAt.clear();
    this.manifests.clear();
    this.blobSizes.clear();
    this.tagLists.clear();
  }
}

// NUL cannot appear in a repository name, tag or digest, so keys never collide.
function key(repository: string, reference: string): string {
  return `${repository}\u0000${reference}`;
}

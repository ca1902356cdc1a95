import { LRUCache } from 'lru-cache';
import type { MetadataChange } from '@meridian/metadata';

export interface CachedManifest {
  digest: string;
  mediaType: string;
  payload: Buffer;
}

/**
 * What the pull path looked up recently: manifests by tag or digest, and blob sizes per
 * repository. Entries are dropped when a change to them commits: at once in the gateway that
 * wrote it, and in the region's other gateways when the change's NOTIFY arrives (a window of
 * milliseconds). If the notification connection is lost, everything is dropped. The TTL bounds
 * what any missed notification could cost.
 */
export class LookupCache {
  private readonly manifests: LRUCache<string, CachedManifest>;
  private readonly blobSizes: LRUCache<string, number>;
  private readonly enabled: boolean;

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
  }

  getManifest(repository: string, reference: string): CachedManifest | undefined {
    return this.manifests.get(key(repository, reference));
  }

  setManifest(repository: string, reference: string, manifest: CachedManifest): void {
    if (this.enabled) this.manifests.set(key(repository, reference), manifest);
  }

  getBlobSize(repository: string, digest: string): number | undefined {
    return this.blobSizes.get(key(repository, digest));
  }

  setBlobSize(repository: string, digest: string, size: number): void {
    if (this.enabled) this.blobSizes.set(key(repository, digest), size);
  }

  invalidate(change: MetadataChange): void {
    switch (change.kind) {
      case 'tag':
        this.manifests.delete(key(change.repository, change.tag));
        break;
      case 'manifest':
        this.manifests.delete(key(change.repository, change.digest));
        break;
      case 'blob':
        this.blobSizes.delete(key(change.repository, change.digest));
        break;
    }
  }

  clear(): void {
    this.manifests.clear();
    this.blobSizes.clear();
  }
}

// NUL cannot appear in a repository name, tag or digest, so keys never collide.
function key(repository: string, reference: string): string {
  return `${repository}\u0000${reference}`;
}

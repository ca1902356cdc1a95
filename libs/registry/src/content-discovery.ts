import { MediaType, assertRepositoryName, compareTagsLexically, parseDigest, type PageRequest } from '@meridian/oci';
import type { Metadata } from '@meridian/metadata';
import type { CachedTagList, LookupCache } from './lookup-cache.js';

/**
 * Repositories with at most this many tags have their whole sorted list cached, so walking it
 * page by page costs one query, not one per page; larger ones are paged in the database.
 */
export const MAX_CACHED_TAG_LIST = 10_000;

export interface Page<T> {
  items: T[];
  /** The last item, when more follow: the `last` of the next page. */
  nextAfter?: string;
}

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ReferrersIndex {
  schemaVersion: 2;
  mediaType: typeof MediaType.OciIndex;
  manifests: ReferrerDescriptor[];
}

/** distribution-spec v1.1 "Content discovery": tags, referrers, and the _catalog extension. */
export class ContentDiscovery {
  constructor(
    private readonly metadata: Metadata,
    private readonly cache: LookupCache,
  ) {}

  async listTags(repository: string, page: PageRequest): Promise<Page<string>> {
    assertRepositoryName(repository);
    const list = this.cache.getTagList(repository) ?? (await this.loadTagList(repository));
    if (list.tags) {
      const start = page.last === undefined ? 0 : firstAfter(list.tags, page.last);
      return toPage(list.tags.slice(start, start + page.limit + 1), page.limit);
    }
    // One more than asked tells whether a next page exists without a count query.
    return toPage(await this.metadata.tags.list(list.repositoryId, page.limit + 1, page.last), page.limit);
  }

  private async loadTagList(repository: string): Promise<CachedTagList> {
    const readAt = this.cache.currentGeneration(repository);
    const repositoryId = await this.metadata.repositories.requireId(repository);
    const tags = await this.metadata.tags.list(repositoryId, MAX_CACHED_TAG_LIST + 1);
    const list = tags.length <= MAX_CACHED_TAG_LIST ? { repositoryId, tags } : { repositoryId };
    this.cache.setTagList(repository, list, readAt);
    return list;
  }

  /**
   * Repository names in lexical order, a page at a time. With `visible` (what the client may see),
   * the names it rejects are skipped and the page filled from further on, so paging by `last`
   * works the same over the narrower list.
   */
  async listRepositories(page: PageRequest, visible?: (repository: string) => boolean): Promise<Page<string>> {
    if (!visible) return toPage(await this.metadata.repositories.list(page.limit + 1, page.last), page.limit);
    const kept: string[] = [];
    let after = page.last;
    // Read in batches of at least a page, until the page and one more are found or names run out.
    const batch = Math.max(page.limit + 1, 100);
    for (;;) {
      const names = await this.metadata.repositories.list(batch, after);
      kept.push(...names.filter(visible));
      if (kept.length > page.limit || names.length < batch) break;
      after = names[names.length - 1];
    }
    return toPage(kept.slice(0, page.limit + 1), page.limit);
  }

  /**
   * Manifests whose `subject` is `digest`, as an image index, a page at a time in digest order.
   * An unknown subject, or repository, gives an empty index: the spec requires 200, since a 404
   * tells clients the registry lacks the referrers API.
   */
  async listReferrers(repository: string, digestText: string, page: PageRequest & { artifactType?: string }): Promise<Page<ReferrerDescriptor> & { index: ReferrersIndex }> {
    assertRepositoryName(repository);
    const digest = parseDigest(digestText);
    const repositoryId = await this.metadata.repositories.findId(repository);
    const rows =
      repositoryId === undefined
        ? []
        : await this.metadata.manifests.referrers(repositoryId, digest.value, {
            limit: page.limit + 1,
            ...(page.artifactType !== undefined ? { artifactType: page.artifactType } : {}),
            ...(page.last !== undefined ? { after: page.last } : {}),
          });
    const manifests = rows.slice(0, page.limit).map((row) => ({
      mediaType: row.mediaType,
      digest: row.digest,
      size: row.size,
      ...(row.artifactType ? { artifactType: row.artifactType } : {}),
      ...(row.annotations ? { annotations: row.annotations } : {}),
    }));
    const index: ReferrersIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
    const last = manifests[manifests.length - 1];
    return rows.length > page.limit && last ? { items: manifests, index, nextAfter: last.digest } : { items: manifests, index };
  }
}

/** Index of the first tag sorting after `last` in the tag list's order (the database's too). */
function firstAfter(sorted: readonly string[], last: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareTagsLexically(sorted[middle]!, last) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

function toPage(items: string[], limit: number): Page<string> {
  if (items.length <= limit) return { items };
  const page = items.slice(0, limit);
  return limit === 0 ? { items: page } : { items: page, nextAfter: page[page.length - 1]! };
}

import { PaginationInvalidError } from './errors.js';

/**
 * `n` and `last` of distribution-spec v1.1 "Content discovery: listing tags" (and the _catalog
 * equivalent). A page is never larger than `maxPageSize`: the registry MAY return fewer than `n`,
 * and says so with a `Link: <...>; rel="next"` header, so one request does bounded work.
 */
export interface PageRequest {
  limit: number;
  last?: string;
}

export function parsePageRequest(n: unknown, last: unknown, maxPageSize: number): PageRequest {
  let limit = maxPageSize;
  if (n !== undefined) {
    if (typeof n !== 'string' || !/^\d{1,9}$/.test(n)) throw new PaginationInvalidError(`n must be a non-negative integer`);
    limit = Math.min(Number(n), maxPageSize);
  }
  if (last !== undefined && typeof last !== 'string') throw new PaginationInvalidError('last must be a single value');
  return last === undefined || last === '' ? { limit } : { limit, last };
}

/** The Link header value pointing at the page after `lastItem`. */
export function nextPageLink(basePath: string, limit: number, lastItem: string): string {
  return `<${basePath}?n=${limit}&last=${encodeURIComponent(lastItem)}>; rel="next"`;
}

/**
 * `n` and `last` of distribution-spec v1.1 "Content discovery: listing tags" and the Link
 * header of its paginated responses.
 */
import { describe, expect, it } from 'vitest';
import { PaginationInvalidError } from './errors.js';
import { nextPageLink, parsePageRequest } from './pagination.js';

describe('parsePageRequest', () => {
  it('defaults to the maximum page size without n and last', () => {
    expect(parsePageRequest(undefined, undefined, 100)).toEqual({ limit: 100 });
  });

  // distribution-spec v1.1 "Content discovery": `n` limits the number of results.
  it('takes n when it is at most the maximum', () => {
    expect(parsePageRequest('10', undefined, 100)).toEqual({ limit: 10 });
    expect(parsePageRequest('100', undefined, 100)).toEqual({ limit: 100 });
    expect(parsePageRequest('007', undefined, 100)).toEqual({ limit: 7 });
  });

  it('accepts n=0', () => {
    expect(parsePageRequest('0', undefined, 100)).toEqual({ limit: 0 });
  });

  // The registry MAY return fewer than n results; one request does bounded work.
  it('caps n at the maximum page size', () => {
    expect(parsePageRequest('101', undefined, 100)).toEqual({ limit: 100 });
    expect(parsePageRequest('999999999', undefined, 50)).toEqual({ limit: 50 });
  });

  it.each(['-1', 'abc', '1.5', '1e3', ' 5', '5 ', '+5', '0x10', '1234567890'])('refuses n=%j', (n) => {
    expect(() => parsePageRequest(n, undefined, 100)).toThrow(PaginationInvalidError);
  });

  it('refuses n given several times or not as a string', () => {
    expect(() => parsePageRequest(['1', '2'], undefined, 100)).toThrow(PaginationInvalidError);
    expect(() => parsePageRequest(5, undefined, 100)).toThrow(PaginationInvalidError);
    expect(() => parsePageRequest({ n: '1' }, undefined, 100)).toThrow(PaginationInvalidError);
  });

  // distribution-spec v1.1 "Content discovery": `last` is the last value of the previous page.
  it('takes last', () => {
    expect(parsePageRequest('10', 'v1.0', 100)).toEqual({ limit: 10, last: 'v1.0' });
    expect(parsePageRequest(undefined, 'library/ubuntu', 100)).toEqual({ limit: 100, last: 'library/ubuntu' });
  });

  it('treats an empty last as absent', () => {
    expect(parsePageRequest('10', '', 100)).toEqual({ limit: 10 });
    expect(parsePageRequest('10', '', 100)).not.toHaveProperty('last');
  });

  it('refuses last given several times or not as a string', () => {
    expect(() => parsePageRequest('10', ['a', 'b'], 100)).toThrow(PaginationInvalidError);
    expect(() => parsePageRequest('10', 3, 100)).toThrow(PaginationInvalidError);
  });

  it('answers with a PaginationInvalid error kind', () => {
    try {
      parsePageRequest('x', undefined, 10);
      expect.unreachable('parsePageRequest should throw');
    } catch (err) {
      expect((err as PaginationInvalidError).kind).toBe('PaginationInvalid');
    }
  });
});

describe('nextPageLink', () => {
  // distribution-spec v1.1 "Content discovery": `Link: <<url>?n=<n>&last=<last>>; rel="next"`.
  it('builds an RFC 8288 Link value with n and last', () => {
    expect(nextPageLink('/v2/library/ubuntu/tags/list', 10, 'v1.0')).toBe('</v2/library/ubuntu/tags/list?n=10&last=v1.0>; rel="next"');
    expect(nextPageLink('/v2/_catalog', 2, 'b')).toBe('</v2/_catalog?n=2&last=b>; rel="next"');
  });

  it('percent-encodes last, so a repository name or odd tag stays one query value', () => {
    expect(nextPageLink('/v2/_catalog', 5, 'library/ubuntu')).toBe('</v2/_catalog?n=5&last=library%2Fubuntu>; rel="next"');
    expect(nextPageLink('/v2/_catalog', 5, 'a&n=1000>')).toBe('</v2/_catalog?n=5&last=a%26n%3D1000%3E>; rel="next"');
  });

  it('round-trips through URL parsing and parsePageRequest', () => {
    const link = nextPageLink('/v2/a/b/tags/list', 3, 'v_1.0-rc');
    const target = /^<([^>]+)>; rel="next"$/.exec(link)?.[1];
    expect(target).toBeDefined();
    const url = new URL(target!, 'http://registry.test');
    expect(url.pathname).toBe('/v2/a/b/tags/list');
    expect(parsePageRequest(url.searchParams.get('n') ?? undefined, url.searchParams.get('last') ?? undefined, 100)).toEqual({
      limit: 3,
      last: 'v_1.0-rc',
    });
  });
});

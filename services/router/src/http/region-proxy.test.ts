import { describe, expect, it } from 'vitest';
import { relativeLinks } from './region-proxy.js';

describe('relativeLinks', () => {
  const region = 'http://127.0.0.1:5001';

  // distribution-spec v1.1 "Listing Tags": the Link header's URL may be absolute; through the
  // router, the next page must be asked of the router too.
  it('makes targets at the region\'s own origin relative, keeping path and query', () => {
    expect(relativeLinks('<http://127.0.0.1:5001/v2/team/app/tags/list?n=2&last=b>; rel="next"', region)).toBe('</v2/team/app/tags/list?n=2&last=b>; rel="next"');
  });

  it('leaves relative targets, other origins and every other part of the value alone', () => {
    const value = '</v2/_catalog?n=1&last=a>; rel="next", <https://docs.example/paging>; rel="help"';
    expect(relativeLinks(value, region)).toBe(value);
    expect(relativeLinks('<http://127.0.0.1:5002/v2/x/tags/list>; rel="next"', region)).toBe('<http://127.0.0.1:5002/v2/x/tags/list>; rel="next"');
  });
});

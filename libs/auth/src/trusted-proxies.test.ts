import { describe, expect, it } from 'vitest';
import { parseCidrList } from './trusted-proxies.js';

describe('parseCidrList', () => {
  it('reads ranges and single addresses, comma-separated', () => {
    expect(parseCidrList(' 10.0.0.0/8, 192.0.2.1 ,::1')).toEqual(['10.0.0.0/8', '192.0.2.1/32', '::1/128']);
    expect(parseCidrList('')).toEqual([]);
  });

  it('names what is not a range', () => {
    expect(() => parseCidrList('10.0.0.0/8, proxy.internal')).toThrow('"proxy.internal" is not an address range like 10.0.0.0/8');
  });
});

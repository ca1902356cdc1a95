import { describe, expect, it } from 'vitest';
import { ClientLocator, LocationTableSchema } from './client-locator.js';

const TABLE = [
  { cidr: '10.0.0.0/8', lat: 50, lon: 8, name: 'corporate' },
  { cidr: '10.1.0.0/16', lat: 53.35, lon: -6.26, name: 'dublin office' },
  { cidr: '2001:db8::/32', lat: 1.35, lon: 103.82 },
];

describe('ClientLocator.locate', () => {
  const locator = new ClientLocator(TABLE);

  it('places an address by the most specific range holding it, whatever the order of the table', () => {
    expect(locator.locate('10.1.2.3')).toEqual({ lat: 53.35, lon: -6.26, range: '10.1.0.0/16', name: 'dublin office' });
    expect(locator.locate('10.2.0.1')).toMatchObject({ range: '10.0.0.0/8' });
    expect(new ClientLocator([...TABLE].reverse()).locate('10.1.2.3')).toMatchObject({ range: '10.1.0.0/16' });
  });

  it('reads an IPv4-mapped IPv6 address (a dual-stack socket) as its IPv4 address, and matches IPv6 ranges', () => {
    expect(locator.locate('::ffff:10.1.9.9')).toMatchObject({ range: '10.1.0.0/16' });
    expect(locator.locate('2001:db8:1::7')).toMatchObject({ lat: 1.35, lon: 103.82 });
  });

  it('places nothing outside the table, and no text that is not an address', () => {
    expect(locator.locate('192.168.1.1')).toBeUndefined();
    expect(locator.locate('2001:db9::1')).toBeUndefined();
    expect(locator.locate('not-an-address')).toBeUndefined();
    expect(locator.locate(undefined)).toBeUndefined();
  });
});

describe('ClientLocator.clientAddress', () => {
  const locator = new ClientLocator([], ['127.0.0.1/32', '10.9.0.0/16']);

  it('is the socket peer when the peer is no trusted proxy, whatever X-Forwarded-For claims', () => {
    expect(locator.clientAddress('192.0.2.7', '10.1.2.3')).toBe('192.0.2.7');
    expect(locator.clientAddress('::ffff:192.0.2.7', undefined)).toBe('192.0.2.7');
  });

  it('behind trusted proxies, is the nearest X-Forwarded-For address no trusted proxy owns', () => {
    // The client may have sent a made-up first entry; only what the trusted hops added counts.
    expect(locator.clientAddress('127.0.0.1', '6.6.6.6, 198.51.100.4, 10.9.1.1')).toBe('198.51.100.4');
    expect(locator.clientAddress('127.0.0.1', ['6.6.6.6', '198.51.100.4'])).toBe('198.51.100.4');
  });

  it('with every hop trusted, is the leftmost; a hop that is no address ends the walk at the last one that was', () => {
    expect(locator.clientAddress('127.0.0.1', '10.9.0.5, 10.9.0.6')).toBe('10.9.0.5');
    expect(locator.clientAddress('127.0.0.1', '198.51.100.4, garbage, 10.9.0.6')).toBe('10.9.0.6');
    expect(locator.clientAddress('127.0.0.1', '')).toBe('127.0.0.1');
  });
});

describe('the location table', () => {
  it('takes rows of cidr, lat, lon and an optional name', () => {
    expect(LocationTableSchema.safeParse(TABLE).success).toBe(true);
  });

  it('names each bad row: a range that is none, coordinates out of bounds, an unknown field, the same range twice', () => {
    const result = LocationTableSchema.safeParse([
      { cidr: '10.0.0.0/33', lat: 1, lon: 1 },
      { cidr: '10.0.0.0/8', lat: 91, lon: 1 },
      { cidr: '10.0.0.0/8', lat: 1, lon: 1, country: 'IE' },
      { cidr: '10.0.0.0/8', lat: 1, lon: 1 },
    ]);
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((issue) => issue.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['0.cidr', '1.lat', '2']));
  });

  it('refuses a range listed twice under two spellings', () => {
    const result = LocationTableSchema.safeParse([
      { cidr: '2001:db8::/32', lat: 1, lon: 1 },
      { cidr: '2001:0db8:0:0::/32', lat: 2, lon: 2 },
    ]);
    expect(result.error?.issues[0]).toMatchObject({ path: [1, 'cidr'], message: '2001:0db8:0:0::/32 is the same range as row 0' });
  });
});

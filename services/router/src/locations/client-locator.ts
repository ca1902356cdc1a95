import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { isCidr } from '@meridian/auth';
import type { Coordinates } from '@meridian/proto/geo';

/**
 * One row of the location table: clients whose address falls in `cidr` are taken to be at
 * (`lat`, `lon`). `name` is for people reading the table and the router's debug log.
 */
export interface LocationRange extends Coordinates {
  cidr: string;
  name?: string;
}

const LocationRangeSchema = z
  .object({
    cidr: z.string().refine((value) => isCidr(value), 'expected an address range like 10.1.0.0/16 or 2001:db8::/32'),
    lat: z.number().min(-90).max(90),
    lon: z.number().min(-180).max(180),
    name: z.string().max(200).optional(),
  })
  .strict();

/** The table as the router reads it (a JSON array), with each row's problem named by its index. */
export const LocationTableSchema = z.array(LocationRangeSchema).superRefine((rows, ctx) => {
  const seen = new Map<string, number>();
  rows.forEach((row, index) => {
    const key = normalizedCidr(row.cidr);
    const earlier = seen.get(key);
    if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: [index, 'cidr'], message: `${row.cidr} is the same range as row ${earlier}` });
    seen.set(key, index);
  });
});

/** Where a client is, and which row of the table said so. */
export interface ClientLocation extends Coordinates {
  range: string;
  name?: string;
}

interface CompiledRange {
  network: ipaddr.IPv4 | ipaddr.IPv6;
  bits: number;
  location: ClientLocation;
}

/**
 * Places clients by their address: which address a request comes from (the socket's peer, or
 * behind trusted proxies the nearest address in `X-Forwarded-For` that no trusted proxy owns),
 * and where that address is, by the most specific range of the location table that holds it.
 * IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`, what a dual-stack socket reports) count as
 * their IPv4 address. Ranges are matched with ipaddr.js, whose parsing is strict about the forms
 * an address may take.
 */
export class ClientLocator {
  private readonly ranges: { ipv4: CompiledRange[]; ipv6: CompiledRange[] } = { ipv4: [], ipv6: [] };
  private readonly trusted: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
  /**
   * Addresses already parsed and placed, by the text they came as: a client sends many requests
   * from one address, and parsing it and walking the table cost more than the rest of the
   * routing decision. Emptied when it reaches CACHED_ADDRESSES, so a flood of distinct
   * addresses costs what it did without the cache, never unbounded memory.
   */
  private readonly seen = new Map<string, SeenAddress | null>();

  constructor(table: readonly LocationRange[], trustedProxies: readonly string[] = []) {
    for (const row of table) {
      const [network, bits] = ipaddr.parseCIDR(row.cidr);
      const location: ClientLocation = { lat: row.lat, lon: row.lon, range: row.cidr, ...(row.name ? { name: row.name } : {}) };
      this.ranges[network.kind()].push({ network, bits, location });
    }
    // Most specific first: the first range that holds an address is the one that describes it best.
    for (const list of Object.values(this.ranges)) list.sort((a, b) => b.bits - a.bits);
    this.trusted = trustedProxies.map((cidr) => ipaddr.parseCIDR(cidr));
  }

  /**
   * The client's address. `peer` is the socket's remote address. Only when the peer is a trusted
   * proxy is `X-Forwarded-For` read, from its right end (the hop the proxy itself added) leftwards:
   * the first address no trusted proxy owns is the client. Anything left of it could be made up by
   * the client and is never believed. An entry that is no address ends the walk at the last
   * address that was one.
   */
  clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined): string | undefined {
    const peerAddress = this.lookup(peer);
    if (!peerAddress) return undefined;
    if (forwardedFor === undefined || !peerAddress.trusted) return peerAddress.text;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
    let nearest = peerAddress;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = this.lookup(hops[i]!.trim());
      if (!hop) break;
      nearest = hop;
      if (!hop.trusted) break;
    }
    return nearest.text;
  }

  /** Where `address` is, by the most specific range holding it; undefined when none does. */
  locate(address: string | undefined): ClientLocation | undefined {
    return this.lookup(address)?.location;
  }

  /** An address parsed, normalised, checked against the trusted proxies and placed: once per distinct text. */
  private lookup(text: string | undefined): SeenAddress | undefined {
    if (!text) return undefined;
    // Longer than any address: an X-Forwarded-For entry a client made up, not worth remembering.
    if (text.length > LONGEST_ADDRESS) return this.place(text) ?? undefined;
    let seen = this.seen.get(text);
    if (seen === undefined) {
      if (this.seen.size >= CACHED_ADDRESSES) this.seen.clear();
      this.seen.set(text, (seen = this.place(text)));
    }
    return seen ?? undefined;
  }

  private place(text: string): SeenAddress | null {
    const address = parseAddress(text);
    if (!address) return null;
    const trusted = this.trusted.some(([network, bits]) => network.kind() === address.kind() && address.match(network, bits));
    const range = this.ranges[address.kind()].find((candidate) => address.match(candidate.network, candidate.bits));
    return { text: address.toString(), trusted, location: range?.location };
  }
}

/** How many distinct addresses a ClientLocator remembers before it starts over. */
const CACHED_ADDRESSES = 10_000;
/** The longest text an IPv6 address with a zone index can reasonably take. */
const LONGEST_ADDRESS = 64;

interface SeenAddress {
  /** The address in its normal form (an IPv4-mapped IPv6 address as IPv4). */
  text: string;
  /** Whether a trusted proxy owns it. */
  trusted: boolean;
  location: ClientLocation | undefined;
}

function parseAddress(text: string | undefined): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!text || !ipaddr.isValid(text)) return undefined;
  // process() turns an IPv4-mapped IPv6 address into the IPv4 address it carries.
  return ipaddr.process(text);
}

function normalizedCidr(text: string): string {
  try {
    const [network, bits] = ipaddr.parseCIDR(text);
    return `${network.toNormalizedString()}/${bits}`;
  } catch {
    return text;
  }
}

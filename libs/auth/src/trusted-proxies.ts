import ipaddr from 'ipaddr.js';

/**
 * Parses a comma-separated list of address ranges, the form of a trusted-proxies setting
 * (MERIDIAN_TRUSTED_PROXIES, MERIDIAN_ROUTER_TRUSTED_PROXIES). A single address is a range of
 * one; each comes back in CIDR form, as express's `trust proxy` and ipaddr.js take it. Throws
 * naming the first entry that is no address or range, for the caller to name its setting.
 */
export function parseCidrList(text: string): string[] {
  const ranges = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => (part.includes('/') || !ipaddr.isValid(part) ? part : `${part}/${ipaddr.parse(part).kind() === 'ipv4' ? 32 : 128}`));
  for (const range of ranges) if (!isCidr(range)) throw new Error(`"${range}" is not an address range like 10.0.0.0/8`);
  return ranges;
}

/** Whether `text` is an address range in CIDR form (`10.1.0.0/16`, `2001:db8::/32`). */
export function isCidr(text: string): boolean {
  try {
    ipaddr.parseCIDR(text);
    return true;
  } catch {
    return false;
  }
}

/** What is wrong with a list parseCidrList would refuse, for a config schema; undefined: nothing. */
export function cidrListProblem(text: string): string | undefined {
  try {
    parseCidrList(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export type Credentials = { scheme: 'basic'; name: string; password: string } | { scheme: 'bearer'; token: string };

/** An `Authorization` header's Basic or Bearer credentials (RFC 7617, RFC 6750); undefined for anything else. */
export function parseAuthorization(header: string | undefined): Credentials | undefined {
  if (!header) return undefined;
  const match = /^(\S+)\s+(\S+)\s*$/.exec(header);
  if (!match) return undefined;
  const scheme = match[1]!.toLowerCase();
  if (scheme === 'bearer') return { scheme: 'bearer', token: match[2]! };
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(match[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { scheme: 'basic', name: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

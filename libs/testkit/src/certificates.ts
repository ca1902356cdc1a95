import path from 'node:path';
import { clientCertDir, createCertificateAuthority, issueServerCertificate } from '@meridian/cluster/certificates';

export interface TestCertificates {
  /** The authority's certificate (PEM): what a client is told to trust. */
  caFile: string;
  /** The server's certificate, signed by the authority, for 127.0.0.1 and localhost. */
  certFile: string;
  keyFile: string;
  /** A folder holding only `ca.crt`: what containers tools take as `--cert-dir` (`--src-cert-dir`, `--dest-cert-dir`). */
  clientCertDir: string;
}

/**
 * A certificate authority made for one test run, and a server certificate it signs for
 * 127.0.0.1 and localhost, as `pnpm cluster up --tls` makes them (deploy/cluster/certificates.ts).
 * Valid for a day. Test support only.
 */
export async function createTestCertificates(dir: string): Promise<TestCertificates> {
  const authority = await createCertificateAuthority(dir, { days: 1, name: 'Meridian test CA' });
  const server = await issueServerCertificate(authority, dir, 'server', 1);
  return { caFile: authority.caFile, ...server, clientCertDir: await clientCertDir(authority, path.join(dir, 'client')) };
}

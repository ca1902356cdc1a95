import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

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
 * 127.0.0.1 and localhost (both in subjectAltName, RFC 6125), with the openssl command line.
 * Valid for a day; P-256 keys. Test support only.
 */
export async function createTestCertificates(dir: string): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true });
  const file = (name: string) => path.join(dir, name);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', ['req', '-x509', ...ecKey, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '1', '-subj', '/CN=Meridian test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ecKey, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.crt'), '-days', '1', '-extfile', file('server.ext')]);
  const clientCertDir = file('client');
  await mkdir(clientCertDir, { recursive: true });
  await run('cp', [file('ca.crt'), path.join(clientCertDir, 'ca.crt')]);
  return { caFile: file('ca.crt'), certFile: file('server.crt'), keyFile: file('server.key'), clientCertDir };
}

/**
 * A private certificate authority and the server certificates it signs, made with the openssl
 * command line (every machine `deploy/bootstrap.sh` readies has it): what `pnpm cluster up --tls`
 * gives its processes, and what the tests' certificates (libs/testkit) are made with. P-256 keys;
 * every server certificate names 127.0.0.1 and localhost (subjectAltName, RFC 6125), where a
 * cluster on one machine listens.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export interface CertificateAuthority {
  /** The authority's certificate (PEM): what a client is told to trust. */
  caFile: string;
  /** Its private key (PEM, mode 0600): only the tool that issues certificates reads it. */
  caKeyFile: string;
}

export interface ServerCertificateFiles {
  certFile: string;
  keyFile: string;
}

/**
 * Makes an authority into `dir` (`ca.crt`, `ca.key`), valid for `days`. Throws when openssl
 * fails, with its message; leaves whatever files it wrote.
 */
export async function createCertificateAuthority(dir: string, options: { days: number; name: string }): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true });
  const caFile = path.join(dir, 'ca.crt');
  const caKeyFile = path.join(dir, 'ca.key');
  await openssl(['req', '-x509', ...EC_KEY, '-keyout', caKeyFile, '-out', caFile, '-days', String(options.days), '-subj', `/CN=${options.name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { caFile, caKeyFile };
}

/**
 * Makes `<name>.crt` and `<name>.key` in `dir`: a server certificate for 127.0.0.1 and localhost
 * signed by `authority`, valid for `days`.
 */
export async function issueServerCertificate(authority: CertificateAuthority, dir: string, name: string, days: number): Promise<ServerCertificateFiles> {
  await mkdir(dir, { recursive: true });
  const file = (suffix: string) => path.join(dir, `${name}.${suffix}`);
  await openssl(['req', ...EC_KEY, '-keyout', file('key'), '-out', file('csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(file('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  await openssl(['x509', '-req', '-in', file('csr'), '-CA', authority.caFile, '-CAkey', authority.caKeyFile, '-CAcreateserial',
    '-out', file('crt'), '-days', String(days), '-extfile', file('ext')]);
  return { certFile: file('crt'), keyFile: file('key') };
}

/**
 * A folder holding only the authority's certificate as `ca.crt`: what skopeo and podman take as
 * `--cert-dir` (and containerd and podman find under `certs.d/HOST:PORT/`).
 */
export async function clientCertDir(authority: Pick<CertificateAuthority, 'caFile'>, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(authority.caFile, path.join(dir, 'ca.crt'));
  return dir;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const error = err as NodeJS.ErrnoException & { stderr?: string };
    if (error.code === 'ENOENT') throw new Error('openssl is not installed: it makes the cluster\'s certificates (bash deploy/bootstrap.sh installs it)');
    throw new Error(`openssl ${args[0]} failed: ${(error.stderr ?? error.message).trim().split('\n').pop()}`);
  }
}

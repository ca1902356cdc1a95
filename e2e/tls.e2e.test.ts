/**
 * TLS (README, "TLS"): a real gateway process given a certificate signed by an authority this
 * test makes serves HTTPS, and its replica server gRPC over TLS. skopeo pushes and pulls over
 * HTTPS trusting that authority (`--dest-cert-dir`, `--src-cert-dir`) and is refused without it;
 * a client offering at most TLS 1.1 is refused (RFC 8996 deprecates TLS 1.0 and 1.1); a gRPC
 * client works with the authority and fails without it.
 */
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  TEST_CLUSTER_SECRET,
  createEntitledReplicaClient,
  createTestCertificates,
  createTestDatabase,
  freePort,
  startGatewayProcess,
  type GatewayProcess,
  type TestCertificates,
  type TestDatabase,
} from '@meridian/testkit';
import { writeSingleImageLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, SkopeoCommandError, type Skopeo } from './support/skopeo.js';

let home: string;
let certificates: TestCertificates;
let database: TestDatabase;
let gateway: GatewayProcess;
let grpcPort: number;
let skopeo: Skopeo;
let layout: SingleImageLayout;
let ca: Buffer;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-tls-'));
  [certificates, database, skopeo, layout, grpcPort] = await Promise.all([
    createTestCertificates(path.join(home, 'pki')),
    createTestDatabase(),
    createSkopeo(),
    writeSingleImageLayout(path.join(home, 'layout'), { tag: 'v1', layers: 2, layerSize: 300_000 }),
    freePort(),
  ]);
  ca = await readFile(certificates.caFile);
  gateway = await startGatewayProcess({
    databaseUrl: database.url,
    dataDir: path.join(home, 'data'),
    // Generous: the machine running the tests may be busy; this bounds a hang, it measures nothing.
    startTimeoutMs: 120_000,
    env: {
      MERIDIAN_WORKERS: '1',
      MERIDIAN_REGION: 'tls-region',
      MERIDIAN_TLS_CERT: certificates.certFile,
      MERIDIAN_TLS_KEY: certificates.keyFile,
      MERIDIAN_GRPC_PORT: String(grpcPort),
      MERIDIAN_CLUSTER_SECRET: TEST_CLUSTER_SECRET,
    },
  });
}, 300_000);

afterAll(async () => {
  await gateway?.stop();
  await skopeo?.dispose();
  await database?.drop();
  if (home) await rm(home, { recursive: true, force: true });
});

const hostPort = () => new URL(gateway.url).host;

/** GET over HTTPS trusting `ca`, with the TLS versions the client may offer; resolves with the status and the protocol spoken. */
function get(pathname: string, options: tls.ConnectionOptions = {}): Promise<{ status: number; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const request = https.get(new URL(pathname, gateway.url), { ca, agent: false, ...options }, (response) => {
      const protocol = (response.socket as tls.TLSSocket).getProtocol();
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode!, protocol }));
    });
    request.on('error', reject);
  });
}

describe('TLS on the gateway (HTTPS) and its replica server (gRPC)', () => {
  it('serves HTTPS with TLS 1.2 or newer to a client trusting the authority', async () => {
    expect(gateway.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const answer = await get('/v2/');
    expect(answer.status).toBe(200);
    expect(['TLSv1.2', 'TLSv1.3']).toContain(answer.protocol);
    expect(await get('/v2/', { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' })).toEqual({ status: 200, protocol: 'TLSv1.2' });
  });

  it('refuses a client that offers at most TLS 1.1 (RFC 8996)', async () => {
    // The client's own OpenSSL would refuse TLS 1.1 at its default security level; level 0 lets
    // it offer TLS 1.1, so what refuses is the gateway.
    // The refusal is the server's alert (RFC 8446 appendix D: protocol_version), not the client giving up.
    await expect(get('/v2/', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).rejects.toMatchObject({
      code: 'EPROTO',
      message: expect.stringMatching(/alert protocol version/),
    });
  });

  it('skopeo pushes and pulls over HTTPS trusting the authority (--dest-cert-dir, --src-cert-dir), and is refused without it', async () => {
    const reference = `docker://${hostPort()}/tls/app:v1`;
    await skopeo.run(['copy', '--dest-cert-dir', certificates.clientCertDir, '--dest-no-creds', `oci:${layout.dir}:v1`, reference]);
    const pulled = path.join(home, `pulled-${randomBytes(3).toString('hex')}`);
    await skopeo.run(['copy', '--src-cert-dir', certificates.clientCertDir, '--src-no-creds', reference, `oci:${pulled}:v1`]);
    const manifest = JSON.parse((await skopeo.run(['inspect', '--cert-dir', certificates.clientCertDir, '--no-creds', '--raw', reference])).stdout.toString());
    expect(manifest.layers).toHaveLength(2);
    // Verification on (skopeo's default) without the authority: refused, nothing plaintext tried.
    const refused = await skopeo.run(['inspect', '--no-creds', '--raw', reference]).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SkopeoCommandError);
    expect((refused as SkopeoCommandError).message).toMatch(/certificate signed by unknown authority/);
  });

  it('the replica server speaks gRPC over TLS: a client trusting the authority is answered, one without it or in plaintext is not', async () => {
    const health = (options: Parameters<typeof createEntitledReplicaClient>[2]) => {
      const replica = createEntitledReplicaClient(`127.0.0.1:${grpcPort}`, 'tls-region', options);
      return new Promise<{ region: string }>((resolve, reject) =>
        replica.health({}, { deadline: Date.now() + 20_000 }, (err, reply) => (replica.close(), err ? reject(err) : resolve(reply!))),
      );
    };
    expect(await health({ tls: ca })).toMatchObject({ region: 'tls-region' });
    await expect(health({ tls: true })).rejects.toMatchObject({ code: 14 /* UNAVAILABLE */ });
    await expect(health({})).rejects.toMatchObject({ code: 14 /* UNAVAILABLE */ });
  });
});

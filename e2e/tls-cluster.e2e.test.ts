/**
 * A whole cluster over TLS (`pnpm cluster up --tls`, README "TLS"), with auth on: two regions,
 * the control plane, the worker and the router, every hop HTTPS or gRPC over TLS, every process
 * trusting the authority the cluster made and nothing else. skopeo pushes to one region trusting
 * that authority (`--dest-cert-dir`), the image reaches the other region over the TLS replica
 * protocol (relay and worker talking HTTPS to the control plane), skopeo pulls it from that
 * region and reads its manifest through the router (the router's HTTPS proxy to a region over
 * HTTPS). Plain HTTP and plaintext gRPC to a TLS port are refused, and so
 * is a client trusting another authority.
 *
 * The same cluster rotates each region's signing key every few seconds
 * (MERIDIAN_SIGNING_KEY_ROTATION_HOURS), which every step above goes through: a token signed
 * before a rotation still verifies in the other region, and new tokens carry the new kid. The
 * `it`s form one story and run in order.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCertificates, createEntitledReplicaClient, type TestCertificates } from '@meridian/testkit';
import { createClusterHttp, UntrustedCertificateError } from '@meridian/proto/cluster-http';
import type { ClusterRegion, ClusterState } from '../deploy/cluster/cluster.js';
import { eventually } from './support/cluster-run.js';
import { writeSingleImageLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, SkopeoCommandError, type Skopeo } from './support/skopeo.js';
import { createTestCluster, disposeAll, type TestCluster } from './support/test-cluster.js';

const ADMIN_PASSWORD = `tls-${randomBytes(12).toString('hex')}`;
const CREDS = `admin:${ADMIN_PASSWORD}`;
const REFERENCE_PATH = 'secure/app:v1';

describe('a cluster with TLS on every hop (pnpm cluster up --tls)', () => {
  let testCluster: TestCluster;
  let state: ClusterState;
  let workDir: string;
  let skopeo: Skopeo;
  let image: SingleImageLayout;
  let stranger: TestCertificates;

  const hostOf = (url: string) => new URL(url).host;
  /** A skopeo pull of the pushed image from `host` into a fresh layout, trusting the cluster's authority; resolves with the layout's folder. */
  const pull = async (host: string) => {
    const pulled = path.join(workDir, `pulled-${randomBytes(3).toString('hex')}`);
    await skopeo.run(['copy', '--src-cert-dir', state.certDir!, '--src-creds', CREDS, `docker://${host}/${REFERENCE_PATH}`, `oci:${pulled}:v1`]);
    return pulled;
  };

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-tls-cluster-'));
    [image, skopeo, stranger] = await Promise.all([
      writeSingleImageLayout(path.join(workDir, 'image'), { tag: 'v1', layers: 2, layerSize: 128 * 1024 }),
      createSkopeo({ echoDebugLog: process.env.E2E_SKOPEO_DEBUG === '1' }),
      // Another authority, with a certificate for the same addresses: what an impostor would hold.
      createTestCertificates(path.join(workDir, 'stranger')),
    ]);
    testCluster = await createTestCluster('tls-cluster', {
      auth: true,
      tls: true,
      env: {
        MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD,
        MERIDIAN_IDENTITY_SYNC_SECONDS: '1',
        MERIDIAN_DASHBOARD_SCRAPE_INTERVAL_SECONDS: '1',
        // 7.2 s: a new key every few seconds, each signing three sync rounds after it is made.
        MERIDIAN_SIGNING_KEY_ROTATION_HOURS: '0.002',
      },
    });
    state = await testCluster.cluster.up(2);
  }, 300_000);

  afterAll(async () => {
    await disposeAll(testCluster, skopeo, workDir);
  }, 120_000);

  it('starts every process on https:// with certificates its own authority signed, and records the authority in cluster.json', async () => {
    expect(state.tls).toBe(true);
    for (const url of [state.controlPlane, state.router, state.worker!, ...state.regions.map((region) => region.http)]) expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(JSON.parse(await readFile(testCluster.cluster.stateFile, 'utf8'))).toMatchObject({ tls: true, caFile: state.caFile, certDir: state.certDir });
    expect(await readFile(path.join(state.certDir!, 'ca.crt'), 'utf8')).toBe(await readFile(state.caFile!, 'utf8'));
    expect((await stat(path.join(path.dirname(state.caFile!), 'ca.key'))).mode & 0o777).toBe(0o600);
    // Prometheus's targets say https, or every scrape of an HTTPS-only process fails and reads as down.
    const targets = JSON.parse(await readFile(testCluster.cluster.prometheusTargetsFile, 'utf8')) as Array<{ labels: Record<string, string> }>;
    expect(targets.length).toBe(state.metrics.length);
    for (const target of targets) expect(target.labels.__scheme__).toBe('https');
  });

  it('skopeo pushes to one region trusting the authority, pulls the image from the other region and reads it through the router', async () => {
    const [origin, other] = state.regions;
    await skopeo.run(['copy', '--dest-cert-dir', state.certDir!, '--dest-creds', CREDS, `oci:${image.dir}:v1`, `docker://${hostOf(origin!.http)}/${REFERENCE_PATH}`]);
    // The relay posts the change to the control plane over HTTPS, the worker copies it over gRPC
    // with TLS and reports back over HTTPS: only then does the other region hold it.
    const pulled = await eventually(`${REFERENCE_PATH} pulled from ${other!.name}`, () => pull(hostOf(other!.http)));
    const index = JSON.parse(await readFile(path.join(pulled, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]!.digest).toBe(image.manifestDigest);
    // Through the router: the manifest is proxied to a region over HTTPS. (A whole pull through
    // the router, its blob GETs redirected to signed URLs at the region, is
    // identity-cluster.e2e.test.ts's; it does not depend on TLS.)
    const manifest = await skopeo.run(['inspect', '--raw', '--cert-dir', state.certDir!, '--creds', CREDS, `docker://${hostOf(state.router)}/${REFERENCE_PATH}`]);
    expect(`sha256:${createHash('sha256').update(manifest.stdout).digest('hex')}`).toBe(image.manifestDigest);
  }, 240_000);

  it('rotates each region\'s signing key with overlap: a token signed before a rotation verifies in the other region, new tokens carry the new kid', async () => {
    const [origin, other] = state.regions;
    const http = createClusterHttp({ ca: await readFile(state.caFile!) });
    const authorization = `Basic ${Buffer.from(CREDS).toString('base64')}`;
    // Docker "Token Authentication Specification": GET with Basic credentials.
    const tokenOf = async (region: ClusterRegion) => {
      const query = new URLSearchParams({ service: 'meridian', scope: 'repository:secure/app:pull' });
      const response = await http.fetch(`${region.http}/oauth2/token?${query}`, { headers: { authorization } });
      return ((await response.json()) as { token: string }).token;
    };
    const kidOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
    const manifestStatus = async (region: ClusterRegion, jwt: string) => {
      const response = await http.fetch(`${region.http}/v2/secure/app/manifests/v1`, { headers: { authorization: `Bearer ${jwt}`, accept: 'application/vnd.oci.image.manifest.v1+json' } });
      await response.body?.cancel();
      return response.status;
    };
    try {
      const before = await tokenOf(origin!);
      const after = await eventually(`a token of ${origin!.name} signed with a key other than ${kidOf(before)}`, async () => {
        const token = await tokenOf(origin!);
        return kidOf(token) !== kidOf(before) ? token : undefined;
      }, 60_000);
      expect(await manifestStatus(other!, before)).toBe(200);
      expect(await manifestStatus(origin!, before)).toBe(200);
      expect(await manifestStatus(other!, after)).toBe(200);
    } finally {
      await http.close();
    }
  }, 120_000);

  it('the control plane probes every region over HTTPS, and the worker reaches the control plane over HTTPS', async () => {
    const http = createClusterHttp({ ca: await readFile(state.caFile!) });
    try {
      const authorization = `Basic ${Buffer.from(CREDS).toString('base64')}`;
      await eventually('both regions healthy on the dashboard', async () => {
        const response = await http.fetch(`${state.controlPlane}/api/v1/dashboard`, { headers: { authorization } });
        const snapshot = (await response.json()) as { regions: Array<{ name: string; health: string }> };
        return snapshot.regions.length === 2 && snapshot.regions.every((region) => region.health === 'healthy') ? true : undefined;
      });
      expect(state.worker).toMatch(/^https:\/\//);
      const ready = await http.fetch(`${state.worker}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready' });
    } finally {
      await http.close();
    }
  }, 120_000);

  it('refuses plain HTTP on every HTTPS port and plaintext gRPC on every replica port', async () => {
    for (const url of [state.controlPlane, state.router, state.worker!, ...state.regions.map((region) => region.http)]) {
      const plain = url.replace(/^https:/, 'http:');
      await expect(fetch(`${plain}/v2/`, { signal: AbortSignal.timeout(20_000) }), plain).rejects.toThrow(/fetch failed/);
    }
    for (const region of state.regions) {
      const replica = createEntitledReplicaClient(region.grpc, region.name, {});
      const health = new Promise((resolve, reject) => replica.health({}, { deadline: Date.now() + 20_000 }, (err, reply) => (replica.close(), err ? reject(err) : resolve(reply))));
      await expect(health).rejects.toMatchObject({ code: 14 /* UNAVAILABLE */ });
    }
  }, 120_000);

  it('refuses a client trusting another authority: skopeo, a cluster process\'s HTTP client, and a gRPC client', async () => {
    const refused = await skopeo
      .run(['inspect', '--cert-dir', stranger.clientCertDir, '--creds', CREDS, '--raw', `docker://${hostOf(state.router)}/${REFERENCE_PATH}`])
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SkopeoCommandError);
    expect((refused as SkopeoCommandError).message).toMatch(/certificate signed by unknown authority/);

    const http = createClusterHttp({ ca: await readFile(stranger.caFile) });
    try {
      const failed = await http.fetch(`${state.controlPlane}/readyz`).catch((err: unknown) => err);
      expect(failed).toBeInstanceOf(UntrustedCertificateError);
      expect((failed as Error).message).toMatch(/no trusted authority signed .* set MERIDIAN_TLS_CA to /);
    } finally {
      await http.close();
    }

    const region = state.regions[0]!;
    const replica = createEntitledReplicaClient(region.grpc, region.name, { tls: await readFile(stranger.caFile) });
    const health = new Promise((resolve, reject) => replica.health({}, { deadline: Date.now() + 20_000 }, (err, reply) => (replica.close(), err ? reject(err) : resolve(reply))));
    await expect(health).rejects.toMatchObject({ code: 14 /* UNAVAILABLE */ });
  }, 120_000);
});

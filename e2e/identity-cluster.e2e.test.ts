/**
 * Identity and access in a cluster (`pnpm cluster up` with auth on, its default): identities live
 * in the control plane and are managed there with `pnpm meridian --server <control plane>`; every
 * region copies them and verifies tokens on its own with the cluster's key set, so a token issued
 * by one region is good in every region, a disabled token stops working everywhere, and with the
 * control plane stopped a valid token still pulls in every region.
 *
 * Docker "Token Authentication Specification" (the token flow); distribution-spec v1.1 "Error
 * Codes" (UNAUTHORIZED). The `it`s form one story and run in order.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, type ClusterRegion, type ClusterState } from '../deploy/cluster/cluster.js';
import { runMeridian } from '../services/cli/src/run-meridian.js';
import { eventually } from './support/cluster-run.js';
import { writeSingleImageLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, type Skopeo } from './support/skopeo.js';
import { createTestCluster, disposeAll, type TestCluster } from './support/test-cluster.js';

describe('identities shared by a cluster (MERIDIAN_AUTH=on)', () => {
  let testCluster: TestCluster;
  let state: ClusterState;
  let workDir: string;
  let skopeo: Skopeo;
  let image: SingleImageLayout;
  let adminPassword: string;
  const passwords: Record<string, string> = {};
  /** Every password and token the test sees: none may appear in any process's log. */
  const secrets = new Set<string>();

  const basic = (name: string, password: string) => `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;
  const hostOf = (region: ClusterRegion) => new URL(region.http).host;
  const meridian = (args: string[]) =>
    runMeridian([...args, '--server', state.controlPlane], { PATH: process.env.PATH, HOME: process.env.HOME, MERIDIAN_ADMIN_PASSWORD: adminPassword });

  /** The token endpoint of one region, as a client asks it (Basic credentials, GET). */
  async function accessToken(region: ClusterRegion, name: string, password: string, scope: string): Promise<{ status: number; token?: string }> {
    const query = new URLSearchParams({ service: 'meridian', scope });
    const response = await fetch(`${region.http}/oauth2/token?${query}`, { headers: { authorization: basic(name, password) } });
    const body = (await response.json()) as { token?: string };
    if (body.token) secrets.add(body.token);
    return { status: response.status, ...(body.token ? { token: body.token } : {}) };
  }

  async function manifestStatus(region: ClusterRegion, token: string): Promise<number> {
    const response = await fetch(`${region.http}/v2/team-a/app/manifests/v1`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    await response.body?.cancel();
    return response.status;
  }

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-identity-cluster-'));
    image = await writeSingleImageLayout(path.join(workDir, 'image'), { tag: 'v1', layers: 1, layerSize: 64 * 1024 });
    skopeo = await createSkopeo({ echoDebugLog: process.env.E2E_SKOPEO_DEBUG === '1' });
    testCluster = await createTestCluster('identity-cluster', {
      auth: true,
      // A short sync, so the test waits seconds for what an operator would see within ten.
      env: { MERIDIAN_IDENTITY_SYNC_SECONDS: '1', MERIDIAN_ADMIN_PASSWORD: '' },
    });
    state = await testCluster.cluster.up(2);
  }, 300_000);

  afterAll(async () => {
    await disposeAll(testCluster, skopeo, workDir);
  }, 120_000);

  it('starts with auth on, the administrator\'s password in a 0600 file that cluster.json names', async () => {
    expect(state.auth).toBe(true);
    expect(state.adminPasswordFile).toBeDefined();
    expect((await stat(state.adminPasswordFile!)).mode & 0o777).toBe(0o600);
    adminPassword = (await readFile(state.adminPasswordFile!, 'utf8')).trim();
    secrets.add(adminPassword);
    const refused = await fetch(`${state.controlPlane}/api/v1/regions`);
    expect(refused.status).toBe(401);
    await refused.body?.cancel();
    const region = await fetch(`${state.regions[0]!.http}/v2/`);
    expect(region.status).toBe(401);
    await region.body?.cancel();
    // The CLI's region commands pass the administrator's credentials.
    const listed = await meridian(['region', 'list', '--json']);
    expect(listed.stderr).toBe('');
    expect(JSON.parse(listed.stdout).regions.map((r: { name: string }) => r.name).sort()).toEqual(['eu-west', 'us-east']);
  }, 180_000);

  it('manages the cluster\'s identities in the control plane with pnpm meridian --server, and a region refuses to', async () => {
    const map = await meridian(['scope-map', 'create', 'team-a-read', '--repository', 'team-a/*', '--action', 'content/read', '--action', 'metadata/read']);
    expect(map.code, map.stderr).toBe(0);
    for (const name of ['ci', 'leaver']) {
      const created = await meridian(['token', 'create', name, '--scope-map', 'team-a-read', '--json']);
      expect(created.code, created.stderr).toBe(0);
      passwords[name] = (JSON.parse(created.stdout) as { password: string }).password;
      secrets.add(passwords[name]!);
    }
    const atRegion = await fetch(`${state.regions[0]!.http}/api/v1/tokens`, { headers: { authorization: basic('admin', adminPassword) } });
    expect(atRegion.status).toBe(403);
    expect(JSON.stringify(await atRegion.json())).toContain('managed by the control plane');
  }, 180_000);

  it('lets a token made in the control plane push nowhere and pull in every region, with a token issued by either region', async () => {
    const [euWest, usEast] = state.regions as [ClusterRegion, ClusterRegion];
    // The administrator, copied into eu-west from the control plane, pushes there.
    await eventually('eu-west knows the administrator', async () => ((await accessToken(euWest, 'admin', adminPassword, 'repository:team-a/app:push')).status === 200 ? true : undefined));
    await skopeo.run(['copy', '--dest-tls-verify=false', '--dest-creds', `admin:${adminPassword}`, `oci:${image.dir}:v1`, `docker://${hostOf(euWest)}/team-a/app:v1`]);
    for (const region of state.regions) {
      await eventually(`${region.name} knows the token ci`, async () => ((await accessToken(region, 'ci', passwords.ci!, 'repository:team-a/app:pull')).status === 200 ? true : undefined));
    }
    // A token signed by eu-west verifies in us-east, and the other way round.
    const fromEuWest = (await accessToken(euWest, 'ci', passwords.ci!, 'repository:team-a/app:pull')).token!;
    const fromUsEast = (await accessToken(usEast, 'ci', passwords.ci!, 'repository:team-a/app:pull')).token!;
    await eventually('us-east serves team-a/app:v1 to eu-west\'s token', async () => ((await manifestStatus(usEast, fromEuWest)) === 200 ? true : undefined));
    expect(await manifestStatus(euWest, fromUsEast)).toBe(200);
    await skopeo.run(['copy', '--src-tls-verify=false', '--src-creds', `ci:${passwords.ci}`, `docker://${hostOf(usEast)}/team-a/app:v1`, `oci:${path.join(workDir, 'pulled-us-east')}:v1`]);
    // Its scope map gives it no push, in any region.
    expect((await accessToken(usEast, 'ci', passwords.ci!, 'repository:team-a/app:push')).token).toBeDefined();
    const push = await fetch(`${usEast.http}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: { authorization: basic('ci', passwords.ci!) } });
    expect(push.status).toBe(403);
    await push.body?.cancel();
  }, 180_000);

  // Meridian issues 11 and 13. Through the router, a blob GET ends at the region by a redirect,
  // and a Go client (skopeo, containerd, docker) sends no Authorization to another host: the
  // region redirects to a URL signed for that blob, which needs none (distribution-spec v1.1
  // "Pulling blobs" lets a blob GET be answered with a redirect).
  it('lets skopeo pull an image through the router with credentials, its blobs from the region by signed redirects', async () => {
    const pulled = path.join(workDir, 'pulled-through-router');
    await skopeo.run(['copy', '--src-tls-verify=false', '--src-creds', `ci:${passwords.ci}`, `docker://${new URL(state.router).host}/team-a/app:v1`, `oci:${pulled}:v1`]);
    const index = JSON.parse(await readFile(path.join(pulled, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]!.digest).toBe(image.manifestDigest);
    for (const digest of [image.configDigest, ...image.layerDigests]) {
      const bytes = await readFile(path.join(pulled, 'blobs', 'sha256', digest.slice('sha256:'.length)));
      expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(digest);
    }
  }, 120_000);

  it('stops a token disabled in the control plane in every region', async () => {
    // ci and leaver were made together, but a sync may have copied one and not yet the other.
    for (const region of state.regions) {
      await eventually(`${region.name} knows the token leaver`, async () => ((await accessToken(region, 'leaver', passwords.leaver!, 'repository:team-a/app:pull')).status === 200 ? true : undefined));
    }
    const disabled = await meridian(['token', 'disable', 'leaver']);
    expect(disabled.code, disabled.stderr).toBe(0);
    for (const region of state.regions) {
      await eventually(`${region.name} refuses the disabled token`, async () => ((await accessToken(region, 'leaver', passwords.leaver!, 'repository:team-a/app:pull')).status === 401 ? true : undefined));
      const direct = await fetch(`${region.http}/v2/team-a/app/tags/list`, { headers: { authorization: basic('leaver', passwords.leaver!) } });
      expect(direct.status).toBe(401);
      await direct.body?.cancel();
    }
  }, 180_000);

  it('with the control plane stopped, lets a valid token pull in every region, and still refuses the disabled one', async () => {
    process.kill(state.controlPlanePid, 'SIGTERM');
    await eventually('the control plane has stopped', async () => (isAlive(state.controlPlanePid) ? undefined : true));
    const [euWest, usEast] = state.regions as [ClusterRegion, ClusterRegion];
    for (const region of state.regions) {
      await skopeo.run(['copy', '--src-tls-verify=false', '--src-creds', `ci:${passwords.ci}`, `docker://${hostOf(region)}/team-a/app:v1`, `oci:${path.join(workDir, `offline-${region.name}`)}:v1`]);
      expect((await accessToken(region, 'leaver', passwords.leaver!, 'repository:team-a/app:pull')).status).toBe(401);
    }
    const fromUsEast = (await accessToken(usEast, 'ci', passwords.ci!, 'repository:team-a/app:pull')).token!;
    expect(await manifestStatus(euWest, fromUsEast)).toBe(200);
  }, 180_000);

  it('writes no password, token or cluster secret into the log of any process of the cluster', async () => {
    const logDir = path.dirname(testCluster.cluster.logOf('router'));
    secrets.add((await readFile(path.join(logDir, 'cluster-secret'), 'utf8')).trim());
    const logs = (await readdir(logDir)).filter((name) => name.endsWith('.log'));
    // The control plane, both regions, the worker and the router.
    expect(logs.length).toBeGreaterThanOrEqual(5);
    expect(secrets.size).toBeGreaterThan(4);
    for (const name of logs) {
      const text = await readFile(path.join(logDir, name), 'utf8');
      expect(text.length, name).toBeGreaterThan(0);
      for (const secret of secrets) expect(text.includes(secret), `${name} holds a secret`).toBe(false);
    }
  });
});


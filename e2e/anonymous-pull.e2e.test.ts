/**
 * Anonymous pull (MERIDIAN_ANONYMOUS_PULL=on, with MERIDIAN_AUTH=on): a client without
 * credentials pulls any repository, through the token flow as skopeo speaks it (a challenge, then
 * the token endpoint asked without credentials) and containerd's, or straight; pushes, deletes and `_catalog` still
 * need an identity, and their 401 names the scope. With the setting off (its default), a client
 * without credentials pulls nothing.
 *
 * distribution-spec v1.1 "Pulling manifests", "Pulling blobs", "Content discovery" (tags list,
 * referrers), "Error Codes" (UNAUTHORIZED); Docker "Token Authentication Specification".
 *
 * Two gateways of one region (the same database and data directory), one with the setting on, one
 * without it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../libs/testkit/src/database.js';
import { startGatewayProcess, type GatewayProcess } from '../libs/testkit/src/gateway-process.js';
import { writeSingleImageLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, skopeoFailure, type Skopeo } from './support/skopeo.js';
import { startContainerd } from './support/containerd.js';

const ADMIN_PASSWORD = randomBytes(18).toString('base64url');

describe('anonymous pull (MERIDIAN_AUTH=on)', () => {
  let workDir: string;
  let database: TestDatabase;
  let open: GatewayProcess;
  let closed: GatewayProcess;
  let skopeo: Skopeo;
  let image: SingleImageLayout;

  const hostOf = (gateway: GatewayProcess) => new URL(gateway.url).host;

  const skopeoFails = (args: string[]) => skopeoFailure(skopeo, args);

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-anonymous-pull-'));
    image = await writeSingleImageLayout(path.join(workDir, 'image'), { tag: 'v1', layers: 1, layerSize: 64 * 1024 });
    skopeo = await createSkopeo();
    database = await createTestDatabase();
    const dataDir = path.join(workDir, 'data');
    await mkdir(dataDir);
    const env = { MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD, MERIDIAN_WORKERS: '1' };
    open = await startGatewayProcess({ databaseUrl: database.url, dataDir, env: { ...env, MERIDIAN_ANONYMOUS_PULL: 'on' } });
    closed = await startGatewayProcess({ databaseUrl: database.url, dataDir, env });
    await skopeo.run(['copy', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN_PASSWORD}`, `oci:${image.dir}:v1`, `docker://${hostOf(open)}/team-a/app:v1`]);
  });

  afterAll(async () => {
    await open?.stop();
    await closed?.stop();
    await database?.drop();
    await skopeo?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('lets skopeo inspect and copy without credentials, through an anonymous token', async () => {
    const inspected = await skopeo.inspect(`docker://${hostOf(open)}/team-a/app:v1`);
    expect(inspected.Digest).toBe(image.manifestDigest);
    const { requests } = await skopeo.run(['copy', '--src-tls-verify=false', '--src-no-creds', `docker://${hostOf(open)}/team-a/app:v1`, `oci:${path.join(workDir, 'pulled')}:v1`]);
    expect(requests.some((r) => new URL(r.url).pathname === '/oauth2/token')).toBe(true);
    expect(await skopeo.listTags(`docker://${hostOf(open)}/team-a/app`)).toEqual(['v1']);
  });

  it('lets containerd pull without credentials, and refuses its push', async () => {
    const containerd = await startContainerd({ workDir: path.join(workDir, 'containerd') });
    try {
      await containerd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'native', `${hostOf(open)}/team-a/app:v1`]);
      await containerd.tag(`${hostOf(open)}/team-a/app:v1`, `${hostOf(open)}/team-a/from-ctr:v1`);
      const refused = await containerd.ctr(['images', 'push', '--plain-http', `${hostOf(open)}/team-a/from-ctr:v1`]).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(refused?.message).toMatch(/unauthorized|401/i);
    } finally {
      await containerd.stop();
    }
  });

  it('refuses a push without credentials, naming the scope in the challenge', async () => {
    const message = await skopeoFails(['copy', '--dest-tls-verify=false', '--dest-no-creds', `oci:${image.dir}:v1`, `docker://${hostOf(open)}/team-a/app:v2`]);
    expect(message).toMatch(/authentication required|unauthorized/i);
    const upload = await fetch(`${open.url}/v2/team-a/app/blobs/uploads/`, { method: 'POST' });
    expect(upload.status).toBe(401);
    expect(upload.headers.get('www-authenticate')).toBe(`Bearer realm="${open.url}/oauth2/token",service="meridian",scope="repository:team-a/app:push"`);
    expect(((await upload.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNAUTHORIZED');
    expect((await fetch(`${open.url}/v2/team-a/app/manifests/v1`, { method: 'DELETE' })).status).toBe(401);
  });

  it('answers pulls without credentials straight, and keeps _catalog and the /v2/ check for identities', async () => {
    const manifest = await fetch(`${open.url}/v2/team-a/app/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toBe(image.manifestDigest);
    expect((await fetch(`${open.url}/v2/team-a/app/tags/list`)).status).toBe(200);
    expect((await fetch(`${open.url}/v2/team-a/app/referrers/${image.manifestDigest}`)).status).toBe(200);
    expect((await fetch(`${open.url}/v2/_catalog`)).status).toBe(401);
    // The check clients make first stays 401: a client with credentials must be told to use them.
    expect((await fetch(`${open.url}/v2/`)).status).toBe(401);
  });

  it('grants an anonymous token pulls only: no push, no catalog, and no use for other actions', async () => {
    const query = new URLSearchParams([['service', 'meridian'], ['scope', 'repository:team-a/app:pull,push'], ['scope', 'registry:catalog:*']]);
    const response = await fetch(`${open.url}/oauth2/token?${query}`);
    expect(response.status).toBe(200);
    const { token } = (await response.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string; access: unknown };
    expect(claims.access).toEqual([{ type: 'repository', name: 'team-a/app', actions: ['pull'] }]);
    const bearer = { authorization: `Bearer ${token}` };
    expect((await fetch(`${open.url}/v2/team-a/app/tags/list`, { headers: bearer })).status).toBe(200);
    const push = await fetch(`${open.url}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: bearer });
    expect(push.status).toBe(401);
    expect(push.headers.get('www-authenticate')).toContain('scope="repository:team-a/app:push"');
    expect((await fetch(`${open.url}/v2/_catalog`, { headers: bearer })).status).toBe(401);
    // Asked for nothing it may have: the token endpoint asks for credentials, as without the setting.
    const pushOnly = await fetch(`${open.url}/oauth2/token?service=meridian&scope=repository:team-a/app:push`);
    expect(pushOnly.status).toBe(401);
    // The gateway with the setting off takes no anonymous token, though it verifies the region's tokens.
    const elsewhere = await fetch(`${closed.url}/v2/team-a/app/tags/list`, { headers: bearer });
    expect(elsewhere.status).toBe(401);
  });

  it('refuses pulls without credentials where the setting is off (the default)', async () => {
    const message = await skopeoFails(['inspect', '--tls-verify=false', '--no-creds', `docker://${hostOf(closed)}/team-a/app:v1`]);
    expect(message).toMatch(/authentication required|unauthorized/i);
    expect((await fetch(`${closed.url}/v2/team-a/app/manifests/v1`)).status).toBe(401);
    expect((await fetch(`${closed.url}/oauth2/token?service=meridian&scope=repository:team-a/app:pull`)).status).toBe(401);
  });
});

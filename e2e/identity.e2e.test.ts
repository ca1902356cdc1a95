/**
 * Identity and access with MERIDIAN_AUTH=on, against a real gateway process and real skopeo:
 * the Docker token flow (challenge, token endpoint, Bearer) as skopeo, containerd and podman use it, Basic straight on /v2, scope maps
 * narrowing what a token may do, and a log that never shows a password or a token.
 *
 * distribution-spec v1.1 "Error Codes" (UNAUTHORIZED, DENIED), "Mounting a blob from another
 * repository"; Docker "Token Authentication Specification" and "OAuth2 Token Authentication".
 *
 * The `it`s form one story and run in order: later steps use what earlier ones pushed and made.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../libs/testkit/src/database.js';
import { startGatewayProcess, type GatewayProcess } from '../libs/testkit/src/gateway-process.js';
import { writeSingleImageLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, skopeoFailure, type Skopeo } from './support/skopeo.js';
import { startContainerd } from './support/containerd.js';
import { createPodman } from './support/podman.js';

const ADMIN_PASSWORD = randomBytes(18).toString('base64url');

describe('identity and access (MERIDIAN_AUTH=on)', () => {
  let workDir: string;
  let database: TestDatabase;
  let gateway: GatewayProcess;
  let skopeo: Skopeo;
  let imageA: SingleImageLayout;
  let imageB: SingleImageLayout;
  /** Every password and token the test sees: none may appear in the gateway's log. */
  const secrets = new Set<string>([ADMIN_PASSWORD]);
  const tokens: Record<string, string> = {};

  const host = () => new URL(gateway.url).host;
  const basic = (name: string, password: string) => `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;
  const admin = () => basic('admin', ADMIN_PASSWORD);

  async function adminApi(method: string, apiPath: string, body?: unknown): Promise<Response> {
    return fetch(`${gateway.url}/api/v1${apiPath}`, {
      method,
      headers: { authorization: admin(), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  }

  async function createToken(name: string, scopeMap: string): Promise<string> {
    const response = await adminApi('POST', '/tokens', { name, scopeMap });
    expect(response.status).toBe(201);
    const { password } = (await response.json()) as { password: string };
    secrets.add(password);
    tokens[name] = password;
    return password;
  }

  /** A token from the token endpoint for these scopes, as a client fetches it. */
  async function bearerToken(authorization: string, scopes: string[]): Promise<{ status: number; body: Record<string, unknown> }> {
    const query = new URLSearchParams([['service', 'meridian'], ...scopes.map((scope) => ['scope', scope] as [string, string])]);
    const response = await fetch(`${gateway.url}/oauth2/token?${query}`, { headers: { authorization } });
    const body = (await response.json()) as Record<string, unknown>;
    if (typeof body.token === 'string') secrets.add(body.token);
    return { status: response.status, body };
  }

  const skopeoFails = (args: string[]) => skopeoFailure(skopeo, args);

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-identity-'));
    [imageA, imageB] = await Promise.all([
      writeSingleImageLayout(path.join(workDir, 'a'), { tag: 'v1', layers: 1, layerSize: 64 * 1024 }),
      writeSingleImageLayout(path.join(workDir, 'b'), { tag: 'v1', layers: 1, layerSize: 64 * 1024 }),
    ]);
    skopeo = await createSkopeo({ echoDebugLog: process.env.E2E_SKOPEO_DEBUG === '1' });
    database = await createTestDatabase();
    const dataDir = path.join(workDir, 'data');
    await mkdir(dataDir);
    gateway = await startGatewayProcess({
      databaseUrl: database.url,
      dataDir,
      keepOutput: true,
      // The most the gateway ever logs: the log search at the end covers debug lines too.
      env: { MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD, MERIDIAN_WORKERS: '1', LOG_LEVEL: 'debug' },
    });
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
    await skopeo?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('answers /v2 without credentials with 401 UNAUTHORIZED and the Bearer challenge', async () => {
    const response = await fetch(`${gateway.url}/v2/team-a/app/manifests/v1`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer realm="${gateway.url}/oauth2/token",service="meridian",scope="repository:team-a/app:pull"`,
    );
    expect(await response.json()).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
    const base = await fetch(`${gateway.url}/v2/`);
    expect(base.status).toBe(401);
    expect(base.headers.get('www-authenticate')).toBe(`Bearer realm="${gateway.url}/oauth2/token",service="meridian"`);
    const wrong = await fetch(`${gateway.url}/v2/`, { headers: { authorization: basic('admin', 'not-the-password') } });
    expect(wrong.status).toBe(401);
  });

  it('refuses a push from skopeo without credentials', async () => {
    const message = await skopeoFails(['copy', '--dest-tls-verify=false', '--dest-no-creds', `oci:${imageA.dir}:v1`, `docker://${host()}/team-a/app:v1`]);
    expect(message).toMatch(/unauthorized|authentication required/i);
  });

  it('lets skopeo push and pull with --creds and with --authfile (the token flow)', async () => {
    const creds = `admin:${ADMIN_PASSWORD}`;
    await skopeo.run(['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${imageA.dir}:v1`, `docker://${host()}/team-a/app:v1`]);
    const authFile = path.join(workDir, 'auth.json');
    await writeFile(authFile, JSON.stringify({ auths: { [host()]: { auth: Buffer.from(creds).toString('base64') } } }), { mode: 0o600 });
    const { requests } = await skopeo.run(['copy', '--dest-tls-verify=false', '--authfile', authFile, `oci:${imageB.dir}:v1`, `docker://${host()}/team-b/app:v1`]);
    // The client went through the token endpoint, not Basic on every request.
    expect(requests.some((r) => new URL(r.url).pathname === '/oauth2/token')).toBe(true);
    await skopeo.run(['copy', '--src-tls-verify=false', '--authfile', authFile, `docker://${host()}/team-b/app:v1`, `oci:${path.join(workDir, 'pulled-b')}:v1`]);
    const { stdout } = await skopeo.run(['inspect', '--tls-verify=false', '--creds', creds, '--raw', `docker://${host()}/team-a/app:v1`]);
    expect(stdout.length).toBeGreaterThan(0);
  });

  it('takes Basic credentials straight on /v2', async () => {
    const response = await fetch(`${gateway.url}/v2/team-a/app/tags/list`, { headers: { authorization: admin() } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ name: 'team-a/app', tags: ['v1'] });
  });

  it('manages scope maps and tokens through the admin API, for administrators only', async () => {
    const reader = await adminApi('POST', '/scope-maps', { name: 'team-a-read', repositories: ['team-a/*'], actions: ['content/read', 'metadata/read'] });
    expect(reader.status).toBe(201);
    const writer = await adminApi('POST', '/scope-maps', { name: 'team-a-write', repositories: ['team-a/*'], actions: ['content/read', 'content/write', 'metadata/read'] });
    expect(writer.status).toBe(201);
    const bad = await adminApi('POST', '/scope-maps', { name: 'bad', repositories: ['team-*/x'], actions: ['content/read'] });
    expect(bad.status).toBe(400);
    await createToken('team-a-reader', 'team-a-read');
    await createToken('team-a-writer', 'team-a-write');
    const duplicate = await adminApi('POST', '/tokens', { name: 'team-a-reader', scopeMap: 'team-a-read' });
    expect(duplicate.status).toBe(409);
    // A token is no administrator.
    const byToken = await fetch(`${gateway.url}/api/v1/tokens`, { headers: { authorization: basic('team-a-reader', tokens['team-a-reader']!) } });
    expect(byToken.status).toBe(403);
    const anonymous = await fetch(`${gateway.url}/api/v1/tokens`);
    expect(anonymous.status).toBe(401);
    const listed = (await (await adminApi('GET', '/tokens')).json()) as { tokens: Array<{ name: string }> };
    expect(listed.tokens.map((t) => t.name)).toEqual(['team-a-reader', 'team-a-writer']);
    expect(JSON.stringify(listed)).not.toContain(tokens['team-a-reader']!);
  });

  it('lets a team-a/* reader pull team-a/app, but not push it, nor pull team-b/app', async () => {
    const creds = `team-a-reader:${tokens['team-a-reader']}`;
    await skopeo.run(['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host()}/team-a/app:v1`, `oci:${path.join(workDir, 'pulled-a')}:v1`]);
    const push = await skopeoFails(['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${imageA.dir}:v1`, `docker://${host()}/team-a/app:v2`]);
    expect(push).toMatch(/denied|unauthorized/i);
    const pull = await skopeoFails(['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host()}/team-b/app:v1`, `oci:${path.join(workDir, 'stolen-b')}:v1`]);
    expect(pull).toMatch(/denied|unauthorized/i);

    // The same over HTTP with Basic: authenticated, not allowed, is 403 DENIED.
    const auth = basic('team-a-reader', tokens['team-a-reader']!);
    const upload = await fetch(`${gateway.url}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: { authorization: auth } });
    expect(upload.status).toBe(403);
    expect(((await upload.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('DENIED');
    const otherTeam = await fetch(`${gateway.url}/v2/team-b/app/manifests/v1`, { headers: { authorization: auth } });
    expect(otherTeam.status).toBe(403);
  });

  it('lets containerd pull with a token, refuses its push, and takes the admin\'s push', async () => {
    const containerd = await startContainerd({ workDir: path.join(workDir, 'containerd') });
    try {
      const reader = `team-a-reader:${tokens['team-a-reader']}`;
      await containerd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'native', '--user', reader, `${host()}/team-a/app:v1`]);
      await containerd.tag(`${host()}/team-a/app:v1`, `${host()}/team-a/from-ctr:v1`);
      const refused = await containerd.ctr(['images', 'push', '--plain-http', '--user', reader, `${host()}/team-a/from-ctr:v1`]).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(refused?.message).toMatch(/denied|forbidden|403|unauthorized/i);
      await containerd.ctr(['images', 'push', '--plain-http', '--user', `admin:${ADMIN_PASSWORD}`, `${host()}/team-a/from-ctr:v1`]);
    } finally {
      await containerd.stop();
    }
  });

  it('lets podman pull with a token\'s credentials, and refuses its pull without them', async () => {
    const podman = await createPodman({ timeoutMs: 120_000 });
    try {
      const refused = await podman.pull(`${host()}/team-a/app:v1`).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(refused?.message).toMatch(/unauthorized|authentication required/i);
      expect(await podman.listImageIds()).toEqual([]);
      await podman.podman(['pull', '--tls-verify=false', '--creds', `team-a-reader:${tokens['team-a-reader']}`, `${host()}/team-a/app:v1`]);
      expect(await podman.listImageIds()).toHaveLength(1);
    } finally {
      await podman.dispose();
    }
  });

  it('grants from the token endpoint only what the scope map allows (Docker token spec)', async () => {
    const auth = basic('team-a-reader', tokens['team-a-reader']!);
    const { status, body } = await bearerToken(auth, ['repository:team-a/app:pull,push', 'repository:team-b/app:pull']);
    expect(status).toBe(200);
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Number.isNaN(Date.parse(String(body.issued_at)))).toBe(false);
    const claims = JSON.parse(Buffer.from(String(body.token).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims.access).toEqual([{ type: 'repository', name: 'team-a/app', actions: ['pull'] }]);
    expect(claims.aud).toBe('meridian');
    expect(claims.sub).toBe('team-a-reader');
    const bearer = { authorization: `Bearer ${String(body.token)}` };
    expect((await fetch(`${gateway.url}/v2/team-a/app/manifests/v1`, { headers: bearer })).status).toBe(200);
    expect((await fetch(`${gateway.url}/v2/team-b/app/manifests/v1`, { headers: bearer })).status).toBe(403);
    const tampered = String(body.token).slice(0, -4) + 'AAAA';
    const refused = await fetch(`${gateway.url}/v2/team-a/app/manifests/v1`, { headers: { authorization: `Bearer ${tampered}` } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await bearerToken(basic('team-a-reader', 'wrong'), [])).status).toBe(401);
  });

  it('mounts a blob across repositories only from where the token may read', async () => {
    const auth = basic('team-a-writer', tokens['team-a-writer']!);
    const layerB = imageB.layerDigests[0]!;
    const fromB = await fetch(`${gateway.url}/v2/team-a/copy/blobs/uploads/?mount=${layerB}&from=team-b/app`, { method: 'POST', headers: { authorization: auth } });
    // "Mounting a blob": a mount that cannot be made falls back to an upload session (202).
    expect(fromB.status).toBe(202);
    const anywhere = await fetch(`${gateway.url}/v2/team-a/copy/blobs/uploads/?mount=${layerB}`, { method: 'POST', headers: { authorization: auth } });
    expect(anywhere.status).toBe(202);
    expect((await fetch(`${gateway.url}/v2/team-a/copy/blobs/${layerB}`, { method: 'HEAD', headers: { authorization: auth } })).status).toBe(404);
    const layerA = imageA.layerDigests[0]!;
    const fromA = await fetch(`${gateway.url}/v2/team-a/copy/blobs/uploads/?mount=${layerA}&from=team-a/app`, { method: 'POST', headers: { authorization: auth } });
    expect(fromA.status).toBe(201);

    // With a Bearer token the same: the team-b scope asked for is not granted, so no mount.
    const { body } = await bearerToken(auth, ['repository:team-a/copy2:pull,push', 'repository:team-b/app:pull']);
    const bearer = await fetch(`${gateway.url}/v2/team-a/copy2/blobs/uploads/?mount=${layerB}&from=team-b/app`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(body.token)}` },
    });
    expect(bearer.status).toBe(202);
  });

  it('lists in _catalog only the repositories the token may read the metadata of', async () => {
    const auth = basic('team-a-reader', tokens['team-a-reader']!);
    const viaBasic = await fetch(`${gateway.url}/v2/_catalog`, { headers: { authorization: auth } });
    // A repository appears with its first blob or manifest, not with an upload session opened in
    // it (as in Distribution 2.8, whose catalog skips a repository holding only sessions): the
    // mount that fell back to a session left team-a/copy2 out.
    expect(await viaBasic.json()).toEqual({ repositories: ['team-a/app', 'team-a/copy', 'team-a/from-ctr'] });
    const { body } = await bearerToken(auth, ['registry:catalog:*']);
    const viaBearer = await fetch(`${gateway.url}/v2/_catalog?n=1`, { headers: { authorization: `Bearer ${String(body.token)}` } });
    expect(await viaBearer.json()).toEqual({ repositories: ['team-a/app'] });
    expect(viaBearer.headers.get('link')).toContain('last=team-a%2Fapp');
    const all = await fetch(`${gateway.url}/v2/_catalog`, { headers: { authorization: admin() } });
    expect(await all.json()).toEqual({ repositories: ['team-a/app', 'team-a/copy', 'team-a/from-ctr', 'team-b/app'] });
  });

  it('rotates a token\'s two passwords independently, and refuses a disabled token everywhere', async () => {
    const first = tokens['team-a-reader']!;
    const rotated = (await (await adminApi('POST', '/tokens/team-a-reader/passwords/2')).json()) as { password: string };
    secrets.add(rotated.password);
    const tagsWith = (password: string) => fetch(`${gateway.url}/v2/team-a/app/tags/list`, { headers: { authorization: basic('team-a-reader', password) } });
    expect((await tagsWith(first)).status).toBe(200);
    expect((await tagsWith(rotated.password)).status).toBe(200);
    const replaced = (await (await adminApi('POST', '/tokens/team-a-reader/passwords/1')).json()) as { password: string };
    secrets.add(replaced.password);
    expect((await tagsWith(first)).status).toBe(401);
    expect((await tagsWith(replaced.password)).status).toBe(200);

    // OAuth2 POST: a refresh token, then refreshing with it; a disabled token can do neither.
    const form = (fields: Record<string, string>) => fetch(`${gateway.url}/oauth2/token`, { method: 'POST', body: new URLSearchParams(fields) });
    const granted = (await (await form({ grant_type: 'password', username: 'team-a-reader', password: rotated.password, service: 'meridian', scope: 'repository:team-a/app:pull' })).json()) as Record<string, string>;
    secrets.add(granted.access_token!);
    secrets.add(granted.refresh_token!);
    const refreshed = await form({ grant_type: 'refresh_token', refresh_token: granted.refresh_token!, service: 'meridian', scope: 'repository:team-a/app:pull' });
    expect(refreshed.status).toBe(200);
    secrets.add(((await refreshed.json()) as Record<string, string>).access_token!);
    // A refresh token is no access token.
    expect((await fetch(`${gateway.url}/v2/team-a/app/tags/list`, { headers: { authorization: `Bearer ${granted.refresh_token}` } })).status).toBe(401);

    expect((await adminApi('POST', '/tokens/team-a-reader/disable')).status).toBe(204);
    expect((await tagsWith(rotated.password)).status).toBe(401);
    expect((await form({ grant_type: 'refresh_token', refresh_token: granted.refresh_token!, service: 'meridian' })).status).toBe(401);
    expect((await adminApi('POST', '/tokens/team-a-reader/enable')).status).toBe(204);
    expect((await tagsWith(rotated.password)).status).toBe(200);
  });

  it('refuses a token once its expiry has passed', async () => {
    const expiresAt = new Date(Date.now() + 3000).toISOString();
    const response = await adminApi('POST', '/tokens', { name: 'short-lived', scopeMap: 'team-a-read', expiresAt });
    expect(response.status).toBe(201);
    const { password } = (await response.json()) as { password: string };
    secrets.add(password);
    const status = async () => (await fetch(`${gateway.url}/v2/team-a/app/tags/list`, { headers: { authorization: basic('short-lived', password) } })).status;
    expect(await status()).toBe(200);
    // Waits for the expiry to pass (generously), then the same password is refused.
    const deadline = Date.now() + 30_000;
    while (Date.now() < Date.parse(expiresAt) + 500 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await status()).toBe(401);
    expect((await bearerToken(basic('short-lived', password), ['repository:team-a/app:pull'])).status).toBe(401);
  });

  it('never writes a password or a token to its log', async () => {
    const log = gateway.output();
    // The log is there, and at debug: the search below is over something.
    expect(log).toContain('listening');
    for (const secret of secrets) expect(log.includes(secret), 'a secret is in the gateway log').toBe(false);
  });
});

describe('identity and access by default', () => {
  let workDir: string;
  let database: TestDatabase;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-auth-default-'));
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('asks for credentials with nothing set, and makes the admin password into <data dir>/admin-password (0600), naming the file, never the password', async () => {
    const dataDir = path.join(workDir, 'default');
    await mkdir(dataDir);
    // This test relies on the gateway's default: MERIDIAN_AUTH and MERIDIAN_ADMIN_PASSWORD unset
    // (empty counts as unset), whatever the test kit or the caller's environment would set.
    const gateway = await startGatewayProcess({ databaseUrl: database.url, dataDir, keepOutput: true, startTimeoutMs: 120_000, env: { MERIDIAN_AUTH: '', MERIDIAN_ADMIN_PASSWORD: '', MERIDIAN_WORKERS: '1', LOG_LEVEL: 'info' } });
    try {
      const anonymous = await fetch(`${gateway.url}/v2/`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
      const file = path.join(dataDir, 'admin-password');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const password = (await readFile(file, 'utf8')).trim();
      expect(password.length).toBeGreaterThanOrEqual(32);
      const signedIn = await fetch(`${gateway.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
      expect(signedIn.status).toBe(200);
      const output = gateway.output();
      expect(output).toContain(file);
      expect(output.includes(password), 'the generated password is in the output').toBe(false);
      expect(output).not.toContain('NO AUTHENTICATION');
    } finally {
      await gateway.stop();
    }
  }, 180_000);

  it('with MERIDIAN_AUTH=off, says loudly at start that anyone may write, and lets anyone in', async () => {
    const dataDir = path.join(workDir, 'off');
    await mkdir(dataDir);
    const gateway = await startGatewayProcess({ databaseUrl: database.url, dataDir, keepOutput: true, startTimeoutMs: 120_000, env: { MERIDIAN_AUTH: 'off', MERIDIAN_WORKERS: '1', LOG_LEVEL: 'warn' } });
    try {
      expect((await fetch(`${gateway.url}/v2/`)).status).toBe(200);
      // In the banner (whatever the log level) and in the log.
      expect(gateway.output()).toMatch(/WARNING: MERIDIAN_AUTH=off: NO AUTHENTICATION/);
      expect(gateway.output()).toMatch(/"level":40[^\n]*MERIDIAN_AUTH=off: NO AUTHENTICATION/);
    } finally {
      await gateway.stop();
    }
  }, 180_000);
});

/**
 * The audit log of a lone region with MERIDIAN_AUTH=on, against a real gateway process, real
 * skopeo and the `meridian audit` command as a process: who signed in (or failed to), pushed,
 * deleted or changed an identity, with the address they came from; and never a password or a
 * token, neither in the log's rows nor in the gateway's own log.
 *
 * Docker "Token Authentication Specification" (the sign-ins); distribution-spec v1.1 "Pushing
 * manifests", "Deleting manifests", "Deleting tags", "Deleting blobs".
 *
 * The `it`s form one story and run in order.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../libs/testkit/src/database.js';
import { startGatewayProcess, type GatewayProcess } from '../libs/testkit/src/gateway-process.js';
import type { AuditPage, AuditRecord } from '../libs/proto/src/audit.js';
import { runMeridian } from '../services/cli/src/run-meridian.js';
import { writeSingleImageLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, type Skopeo } from './support/skopeo.js';

const ADMIN_PASSWORD = randomBytes(18).toString('base64url');


describe('the audit log (MERIDIAN_AUTH=on)', () => {
  let workDir: string;
  let database: TestDatabase;
  let gateway: GatewayProcess;
  let skopeo: Skopeo;
  let image: SingleImageLayout;
  const started = new Date(Date.now() - 1000).toISOString();
  /** Every password and token the test sees: none may appear in the audit log or the gateway's log. */
  const secrets = new Set<string>([ADMIN_PASSWORD]);

  const host = () => new URL(gateway.url).host;
  const basic = (name: string, password: string) => `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;
  const admin = () => basic('admin', ADMIN_PASSWORD);
  const adminApi = (method: string, apiPath: string, body?: unknown) =>
    fetch(`${gateway.url}/api/v1${apiPath}`, {
      method,
      headers: { authorization: admin(), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });

  /** The whole log since the test began, as an administrator reads it. */
  async function auditLog(): Promise<AuditRecord[]> {
    const response = await adminApi('GET', `/audit?since=${started}&limit=1000`);
    expect(response.status).toBe(200);
    return ((await response.json()) as AuditPage).entries;
  }
  const summary = (entries: AuditRecord[]) => entries.map((entry) => [entry.identity, entry.action, entry.target, entry.outcome]);

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-audit-'));
    image = await writeSingleImageLayout(path.join(workDir, 'image'), { tag: 'v1', layers: 1, layerSize: 64 * 1024 });
    skopeo = await createSkopeo({ echoDebugLog: process.env.E2E_SKOPEO_DEBUG === '1' });
    database = await createTestDatabase();
    const dataDir = path.join(workDir, 'data');
    await mkdir(dataDir);
    gateway = await startGatewayProcess({
      databaseUrl: database.url,
      dataDir,
      keepOutput: true,
      // A gateway process compiles its TypeScript as it starts: on a busy machine that is slow.
      startTimeoutMs: 120_000,
      env: { MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD, MERIDIAN_WORKERS: '1', MERIDIAN_REGION: 'eu-west', LOG_LEVEL: 'debug' },
    });
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
    await skopeo?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('records failed sign-ins with the name given and the address, never the password', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    secrets.add(wrong);
    const viaGet = await fetch(`${gateway.url}/oauth2/token?service=meridian`, { headers: { authorization: basic('admin', wrong) } });
    expect(viaGet.status).toBe(401);
    const viaPost = await fetch(`${gateway.url}/oauth2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: 'mallory', password: wrong }) });
    expect(viaPost.status).toBe(401);
    const viaBasic = await fetch(`${gateway.url}/v2/`, { headers: { authorization: basic('mallory', wrong) } });
    expect(viaBasic.status).toBe(401);
    const viaAdmin = await fetch(`${gateway.url}/api/v1/audit`, { headers: { authorization: basic('admin', wrong) } });
    expect(viaAdmin.status).toBe(401);

    const entries = await auditLog();
    expect(entries.map((entry) => [entry.identity, entry.action, entry.outcome, entry.detail])).toEqual([
      ['admin', 'sign-in', 'failure', { via: 'token' }],
      ['mallory', 'sign-in', 'failure', { via: 'password' }],
      ['mallory', 'sign-in', 'failure', { via: 'basic' }],
      ['admin', 'sign-in', 'failure', { via: 'admin-api' }],
    ]);
    for (const entry of entries) expect(entry).toMatchObject({ region: 'eu-west', address: expect.stringMatching(/127\.0\.0\.1$/) });
  });

  it('records Basic credentials sent with every /v2 request as one sign-in while it is remembered, not one per request', async () => {
    const created = await adminApi('POST', '/users', { name: 'puller' });
    expect(created.status).toBe(201);
    const { password } = (await created.json()) as { password: string };
    secrets.add(password);
    const before = (await auditLog()).length;
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${gateway.url}/v2/`, { headers: { authorization: basic('puller', password) } });
      expect(response.status).toBe(200);
    }
    const entries = (await auditLog()).slice(before).filter((entry) => entry.identity === 'puller');
    expect(entries.map((entry) => [entry.action, entry.outcome, entry.detail])).toEqual([['sign-in', 'success', { via: 'basic' }]]);
    expect((await adminApi('DELETE', '/users/puller')).status).toBe(204);
  });

  it('records skopeo\'s sign-in and push as the identity that made them, with the digest', async () => {
    const before = (await auditLog()).length;
    await skopeo.run(['copy', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN_PASSWORD}`, `oci:${image.dir}:v1`, `docker://${host()}/team-a/app:v1`]);
    const entries = (await auditLog()).slice(before);
    // skopeo signs in through the token endpoint, then pushes; its blob uploads are not audited.
    expect(summary(entries.filter((entry) => entry.action === 'push'))).toEqual([['admin', 'push', 'team-a/app:v1', 'success']]);
    expect(entries.find((entry) => entry.action === 'push')!.detail).toEqual({ digest: image.manifestDigest });
    expect(entries.some((entry) => entry.action === 'sign-in' && entry.identity === 'admin' && entry.outcome === 'success')).toBe(true);
    expect(entries.every((entry) => entry.action === 'sign-in' || entry.action === 'push')).toBe(true);
  });

  it('records identity changes as the administrator\'s, and a token that tries the admin API', async () => {
    const before = (await auditLog()).length;
    expect((await adminApi('POST', '/scope-maps', { name: 'team-a-read', repositories: ['team-a/*'], actions: ['content/read'] })).status).toBe(201);
    const created = await adminApi('POST', '/tokens', { name: 'ci', scopeMap: 'team-a-read' });
    expect(created.status).toBe(201);
    const { password } = (await created.json()) as { password: string };
    secrets.add(password);
    const rotated = (await (await adminApi('POST', '/tokens/ci/passwords/2')).json()) as { password: string };
    secrets.add(rotated.password);
    expect((await adminApi('POST', '/tokens/ci/disable')).status).toBe(204);
    expect((await adminApi('POST', '/tokens/ci/enable')).status).toBe(204);
    const byToken = await fetch(`${gateway.url}/api/v1/tokens`, { headers: { authorization: basic('ci', password) } });
    expect(byToken.status).toBe(403);
    const user = await adminApi('POST', '/users', { name: 'ops' });
    secrets.add(((await user.json()) as { password: string }).password);
    expect((await adminApi('DELETE', '/users/ops')).status).toBe(204);
    expect((await adminApi('DELETE', '/tokens/ci')).status).toBe(204);
    expect((await adminApi('DELETE', '/scope-maps/team-a-read')).status).toBe(204);

    const entries = (await auditLog()).slice(before);
    expect(summary(entries)).toEqual([
      ['admin', 'scope-map.create', 'scope-map team-a-read', 'success'],
      ['admin', 'token.create', 'token ci', 'success'],
      ['admin', 'token.rotate', 'token ci', 'success'],
      ['admin', 'token.disable', 'token ci', 'success'],
      ['admin', 'token.enable', 'token ci', 'success'],
      ['ci', 'sign-in', null, 'denied'],
      ['admin', 'user.create', 'user ops', 'success'],
      ['admin', 'user.delete', 'user ops', 'success'],
      ['admin', 'token.delete', 'token ci', 'success'],
      ['admin', 'scope-map.delete', 'scope-map team-a-read', 'success'],
    ]);
    expect(entries[0]!.detail).toEqual({ repositories: 'team-a/*', actions: 'content/read' });
    expect(entries[2]!.detail).toEqual({ slot: 2 });
  });

  it('records deletes of a tag, a manifest (skopeo delete) and a blob', async () => {
    const before = (await auditLog()).length;
    const manifest = await fetch(`${gateway.url}/v2/team-a/app/manifests/v1`, { headers: { authorization: admin(), accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const digest = manifest.headers.get('docker-content-digest')!;
    const manifestBytes = await manifest.text();
    const { layers } = JSON.parse(manifestBytes) as { layers: Array<{ digest: string }> };
    const retag = await fetch(`${gateway.url}/v2/team-a/app/manifests/old`, {
      method: 'PUT',
      headers: { authorization: admin(), 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifestBytes,
    });
    expect(retag.status).toBe(201);
    expect((await fetch(`${gateway.url}/v2/team-a/app/manifests/old`, { method: 'DELETE', headers: { authorization: admin() } })).status).toBe(202);
    await skopeo.run(['delete', '--tls-verify=false', '--creds', `admin:${ADMIN_PASSWORD}`, `docker://${host()}/team-a/app:v1`]);
    expect((await fetch(`${gateway.url}/v2/team-a/app/blobs/${layers[0]!.digest}`, { method: 'DELETE', headers: { authorization: admin() } })).status).toBe(202);

    const writes = (await auditLog()).slice(before).filter((entry) => entry.action !== 'sign-in');
    expect(summary(writes)).toEqual([
      ['admin', 'push', 'team-a/app:old', 'success'],
      ['admin', 'delete', 'team-a/app:old', 'success'],
      ['admin', 'delete', `team-a/app@${digest}`, 'success'],
      ['admin', 'delete', `team-a/app@${layers[0]!.digest}`, 'success'],
    ]);
  });

  it('prints the log with `meridian audit`, as a table and as JSON, for the administrator only', async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD };
    const table = await runMeridian(['audit', '--since', '1h', '--server', gateway.url], env);
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+REGION\s+IDENTITY\s+ADDRESS\s+ACTION\s+TARGET\s+OUTCOME\s+DETAIL$/);
    expect(lines.some((line) => /\beu-west\s+admin\s+\S*127\.0\.0\.1\s+push\s+team-a\/app:v1\s+success\s+digest=sha256:/.test(line))).toBe(true);
    expect(lines.some((line) => /\beu-west\s+mallory\s+\S*127\.0\.0\.1\s+sign-in\s+-\s+failure\s+via=password/.test(line))).toBe(true);

    const json = await runMeridian(['audit', '--since', started, '--json', '--server', gateway.url], env);
    expect(json.code).toBe(0);
    const printed = JSON.parse(json.stdout) as AuditRecord[];
    expect(printed.map((entry) => entry.id)).toEqual((await auditLog()).map((entry) => entry.id));

    const none = await runMeridian(['audit', '--since', '2099-01-01', '--server', gateway.url], env);
    expect(none.stdout).toBe('nothing recorded since 2099-01-01T00:00:00.000Z\n');
    const anonymous = await runMeridian(['audit', '--server', gateway.url], { PATH: process.env.PATH, HOME: process.env.HOME });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/refused the administrator's credentials/);
    const badSince = await runMeridian(['audit', '--since', 'last week', '--server', gateway.url], env);
    expect(badSince.code).toBe(2);
    // Five CLI processes, each compiling its TypeScript as it starts: slow on a busy machine.
  }, 300_000);

  it('keeps no password or token, neither in the audit log nor in the gateway\'s log', async () => {
    const rows = JSON.stringify(await auditLog());
    const log = gateway.output();
    expect(log).toContain('listening');
    for (const secret of secrets) {
      expect(rows.includes(secret), 'a secret is in the audit log').toBe(false);
      expect(log.includes(secret), 'a secret is in the gateway log').toBe(false);
    }
  });
});

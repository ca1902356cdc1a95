import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_AUDIENCE, ServiceTokenIssuer, generateSigningKey } from '@meridian/auth';
import { startTestControlPlane, testRegion, type TestControlPlane } from '../testing/test-control-plane.js';

const ADMIN_PASSWORD = 'the cluster admin password';
const CLUSTER_SECRET = 'cluster-secret-for-the-identity-tests-0123456789';
const admin = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };
const basic = (name: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}` });

async function serviceAuthorization(secret: string, audience: string): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await new ServiceTokenIssuer(secret, 'gateway').token(audience)}` };
}

let cp: TestControlPlane;
let gateway: { authorization: string };

beforeAll(async () => {
  cp = await startTestControlPlane({
    MERIDIAN_AUTH: 'on',
    MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD,
    MERIDIAN_CLUSTER_SECRET: CLUSTER_SECRET,
    // Low, so that the limit is reached in a few requests; no earlier test fails twice with one name.
    MERIDIAN_SIGN_IN_FAILURES_PER_NAME: '2',
    // The tests' requests come from 127.0.0.1: as from a proxy in front of the admin API.
    MERIDIAN_TRUSTED_PROXIES: '127.0.0.1',
  });
  gateway = await serviceAuthorization(CLUSTER_SECRET, CONTROL_PLANE_AUDIENCE);
});
afterAll(async () => {
  await cp?.close();
});

describe('control plane with MERIDIAN_AUTH=on', () => {
  // RFC 7235 §3.1 (401 with a challenge), RFC 7617 (Basic).
  it('refuses the admin API without credentials, with wrong ones, and with a service token of another secret or audience', async () => {
    const bare = await cp.request('GET', '/api/v1/regions');
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toMatch(/^Basic realm="meridian-admin"/);
    expect(bare.body.error.code).toBe('UNAUTHORIZED');
    expect((await cp.request('POST', '/api/v1/regions', testRegion('eu-west'))).status).toBe(401);
    expect((await cp.request('GET', '/api/v1/regions', undefined, basic('admin', 'not the password'))).status).toBe(401);
    expect((await cp.request('GET', '/api/v1/regions', undefined, await serviceAuthorization(`${CLUSTER_SECRET}-other`, CONTROL_PLANE_AUDIENCE))).status).toBe(401);
    // A token for a region's replica protocol is not one for the control plane.
    expect((await cp.request('GET', '/api/v1/regions', undefined, await serviceAuthorization(CLUSTER_SECRET, 'eu-west'))).status).toBe(401);
    expect((await cp.request('GET', '/dashboard')).status).toBe(401);
    // Health and metrics stay open: load balancers and Prometheus carry no credentials.
    expect((await cp.request('GET', '/healthz')).status).toBe(200);
  });

  it('serves the admin API to the administrator and to the cluster\'s services', async () => {
    expect((await cp.request('POST', '/api/v1/regions', testRegion('eu-west'), admin)).status).toBe(201);
    const listed = await cp.request('GET', '/api/v1/regions', undefined, gateway);
    expect(listed.status).toBe(200);
    expect(listed.body.regions.map((r: { name: string }) => r.name)).toEqual(['eu-west']);
  });

  it('manages the cluster\'s identities as a lone gateway does, for users only, and hands regions hashes, never passwords', async () => {
    expect((await cp.request('POST', '/api/v1/scope-maps', { name: 'team-a-read', repositories: ['team-a/*'], actions: ['content/read'] }, admin)).status).toBe(201);
    const token = await cp.request('POST', '/api/v1/tokens', { name: 'ci', scopeMap: 'team-a-read' }, admin);
    expect(token.status).toBe(201);
    expect(token.body.password).toMatch(/^[\w-]{43}$/);
    // A scope-mapped token is no administrator, and a service may not manage identities.
    expect((await cp.request('GET', '/api/v1/regions', undefined, basic('ci', token.body.password))).status).toBe(403);
    expect((await cp.request('GET', '/api/v1/tokens', undefined, gateway)).status).toBe(401);
    const duplicate = await cp.request('POST', '/api/v1/tokens', { name: 'ci', scopeMap: 'team-a-read' }, admin);
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error.code).toBe('IDENTITY_CONFLICT');

    const synced = await cp.request('GET', '/api/v1/identity-sync', undefined, gateway);
    expect(synced.status).toBe(200);
    expect(synced.headers.get('cache-control')).toBe('no-store');
    expect(synced.body.users.map((u: { name: string }) => u.name)).toEqual(['admin']);
    expect(synced.body.scopeMaps).toEqual([{ name: 'team-a-read', repositories: ['team-a/*'], actions: ['content/read'] }]);
    expect(synced.body.tokens).toMatchObject([{ name: 'ci', scopeMap: 'team-a-read', disabled: false, password2Hash: null }]);
    expect(synced.body.tokens[0].password1Hash).toMatch(/^\$argon2id\$/);
    const text = JSON.stringify(synced.body);
    expect(text).not.toContain(token.body.password);
    expect(text).not.toContain(ADMIN_PASSWORD);
  });

  it('records the identity changes made here and the credentials refused in the cluster\'s audit log, as the control plane\'s entries, without a password', async () => {
    const userPassword = 'the password of the auditor';
    expect((await cp.request('POST', '/api/v1/users', { name: 'auditor', password: userPassword }, admin)).status).toBe(201);
    expect((await cp.request('POST', '/api/v1/scope-maps', { name: 'audited', repositories: ['audited/*'], actions: ['content/read'] }, admin)).status).toBe(201);
    const token = await cp.request('POST', '/api/v1/tokens', { name: 'audited-ci', scopeMap: 'audited' }, admin);
    expect(token.status).toBe(201);
    expect((await cp.request('GET', '/api/v1/regions', undefined, basic('audited-ci', token.body.password))).status).toBe(403);
    expect((await cp.request('POST', '/api/v1/tokens/audited-ci/passwords/2', undefined, basic('auditor', userPassword))).status).toBe(200);
    expect((await cp.request('POST', '/api/v1/tokens/audited-ci/disable', undefined, admin)).status).toBe(204);
    expect((await cp.request('DELETE', '/api/v1/users/auditor', undefined, admin)).status).toBe(204);
    expect((await cp.request('GET', '/api/v1/regions', undefined, basic('mallory', 'a guessed password'))).status).toBe(401);

    const log = await cp.request('GET', '/api/v1/audit?limit=1000', undefined, admin);
    expect(log.status).toBe(200);
    const mine = (log.body.entries as Array<Record<string, unknown>>).filter((entry) =>
      ['user auditor', 'scope-map audited', 'token audited-ci'].includes(entry.target as string) || ['mallory', 'audited-ci'].includes(entry.identity as string),
    );
    const entry = (identity: string, action: string, target: string | null, outcome: string, detail: Record<string, unknown> | null) => ({
      id: expect.any(String), at: expect.any(String), region: 'control-plane', identity, address: expect.stringMatching(/127\.0\.0\.1$/), forwardedFor: null, action, target, outcome, detail,
    });
    expect(mine).toEqual([
      entry('admin', 'user.create', 'user auditor', 'success', null),
      entry('admin', 'scope-map.create', 'scope-map audited', 'success', { repositories: 'audited/*', actions: 'content/read' }),
      entry('admin', 'token.create', 'token audited-ci', 'success', { scopeMap: 'audited' }),
      entry('audited-ci', 'sign-in', null, 'denied', { via: 'admin-api' }),
      entry('auditor', 'token.rotate', 'token audited-ci', 'success', { slot: 2 }),
      entry('admin', 'token.disable', 'token audited-ci', 'success', null),
      entry('admin', 'user.delete', 'user auditor', 'success', null),
      entry('mallory', 'sign-in', null, 'failure', { via: 'admin-api' }),
    ]);
    const text = JSON.stringify(log.body);
    for (const secret of [ADMIN_PASSWORD, userPassword, token.body.password, 'a guessed password']) expect(text).not.toContain(secret);
  });

  it('publishes each region\'s public signing keys as the cluster\'s key set, and refuses a private key or a kid taken by another region', async () => {
    const key = await generateSigningKey();
    expect((await cp.request('PUT', `/api/v1/identity-sync/keys/${key.kid}`, { region: 'eu-west', publicJwk: key.publicJwk }, gateway)).status).toBe(204);
    expect((await cp.request('PUT', `/api/v1/identity-sync/keys/${key.kid}`, { region: 'eu-west', publicJwk: key.publicJwk }, gateway)).status).toBe(204);
    expect((await cp.request('PUT', `/api/v1/identity-sync/keys/${key.kid}`, { region: 'us-east', publicJwk: key.publicJwk }, gateway)).status).toBe(400);
    const secret = await generateSigningKey();
    const leaked = await cp.request('PUT', `/api/v1/identity-sync/keys/${secret.kid}`, { region: 'eu-west', publicJwk: secret.privateJwk }, gateway);
    expect(leaked.status).toBe(400);
    const synced = await cp.request('GET', '/api/v1/identity-sync', undefined, gateway);
    expect(synced.body.keys).toEqual([{ kid: key.kid, region: 'eu-west', publicJwk: key.publicJwk }]);
  });

  // distribution-spec v1.1 "Error Codes" (TOOMANYREQUESTS), RFC 9110 §10.2.3 (Retry-After).
  it('refuses a name past its failed sign-ins with 429 and Retry-After, even with the right password, unchecked', async () => {
    const created = await cp.request('POST', '/api/v1/users', { name: 'ops' }, admin);
    expect(created.status).toBe(201);
    expect((await cp.request('GET', '/api/v1/regions', undefined, basic('ops', 'wrong 1'))).status).toBe(401);
    expect((await cp.request('GET', '/api/v1/regions', undefined, basic('ops', 'wrong 2'))).status).toBe(401);
    const refused = await cp.request('GET', '/api/v1/regions', undefined, basic('ops', created.body.password));
    expect(refused.status).toBe(429);
    expect(refused.body.error).toEqual({ code: 'TOO_MANY_REQUESTS', message: expect.stringMatching(/^too many failed sign-ins for ops from this address: try again in \d+ seconds$/) });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another name from the same address still signs in, and services are not limited.
    expect((await cp.request('GET', '/api/v1/regions', undefined, admin)).status).toBe(200);
    expect((await cp.request('GET', '/api/v1/regions', undefined, gateway)).status).toBe(200);
  });

  it('audits a sign-in through a trusted proxy (MERIDIAN_TRUSTED_PROXIES) as its forwarded client\'s', async () => {
    const through = (client: string, password: string) => cp.request('GET', '/api/v1/regions', undefined, { ...basic('proxied', password), 'x-forwarded-for': client });
    expect((await cp.request('POST', '/api/v1/users', { name: 'proxied', password: 'the proxied user password' }, admin)).status).toBe(201);
    expect((await through('198.51.100.7', 'wrong')).status).toBe(401);

    const log = await cp.request('GET', '/api/v1/audit?limit=1000', undefined, admin);
    const failures = (log.body.entries as Array<Record<string, unknown>>).filter((entry) => entry.identity === 'proxied' && entry.action === 'sign-in');
    expect(failures).toMatchObject([{ address: '198.51.100.7', forwardedFor: '198.51.100.7', outcome: 'failure' }]);
  });
});

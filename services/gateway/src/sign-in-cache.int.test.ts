import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditPage } from '@meridian/proto';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

// Basic credentials on /v2 are checked against their argon2id hash once, then remembered for a
// short while (libs/auth VerifiedSignIns); a change made through this gateway's own admin API
// ends what it remembered at once.

const ADMIN_PASSWORD = 'sign-in-cache-admin-password';
const basic = (name: string, password: string) => `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;

describe('remembered sign-ins (MERIDIAN_AUTH=on)', () => {
  let gateway: TestGateway;

  const admin = (method: string, apiPath: string, body?: unknown) =>
    fetch(`${gateway.url}/api/v1${apiPath}`, {
      method,
      headers: { authorization: basic('admin', ADMIN_PASSWORD), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  /** 404 (the repository is empty) when the credentials are let in, 401 when not. */
  const tagsStatus = async (name: string, password: string) =>
    (await fetch(`${gateway.url}/v2/team-a/app/tags/list`, { headers: { authorization: basic(name, password) } })).status;
  /** Changes the database behind the gateway's back, as another gateway of the region would. */
  const elsewhere = async (sql: string, params: unknown[]) => {
    const client = new pg.Client({ connectionString: gateway.database.url });
    await client.connect();
    try {
      await client.query(sql, params);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    gateway = await startTestGateway({ MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD });
    expect((await admin('POST', '/scope-maps', { name: 'team-a-read', repositories: ['team-a/*'], actions: ['content/read'] })).status).toBe(201);
  });
  afterAll(async () => {
    await gateway?.close();
  });

  async function createToken(name: string): Promise<string> {
    const response = await admin('POST', '/tokens', { name, scopeMap: 'team-a-read' });
    expect(response.status).toBe(201);
    return ((await response.json()) as { password: string }).password;
  }

  it('takes a checked password again without reading the identity: a change made elsewhere shows later', async () => {
    const password = await createToken('remembered');
    expect(await tagsStatus('remembered', password)).toBe(404);
    await elsewhere('UPDATE tokens SET disabled = true WHERE name = $1', ['remembered']);
    // Remembered (for at most the sign-in TTL, 60 s): no database read, no argon2.
    expect(await tagsStatus('remembered', password)).toBe(404);
    // Not remembered: a wrong password is checked, and refused.
    expect(await tagsStatus('remembered', `${password}x`)).toBe(401);
  });

  // More connections than MERIDIAN_SIGN_IN_FAILURES_PER_NAME (10): each attempt is counted
  // against the limit before its check, so checked one by one they would turn some away with 429.
  it('checks credentials arriving on many connections at once one time: all let in, one audited sign-in', async () => {
    const since = new Date().toISOString();
    const password = await createToken('many-connections');
    const statuses = await Promise.all(Array.from({ length: 16 }, () => tagsStatus('many-connections', password)));
    expect(statuses).toEqual(Array.from({ length: 16 }, () => 404));
    const audit = (await (await admin('GET', `/audit?since=${since}&limit=1000`)).json()) as AuditPage;
    const signIns = audit.entries.filter((entry) => entry.action === 'sign-in' && entry.identity === 'many-connections');
    expect(signIns.map((entry) => entry.outcome)).toEqual(['success']);
  });

  it('refuses a disabled token at once when this gateway disabled it', async () => {
    const password = await createToken('disabled-here');
    expect(await tagsStatus('disabled-here', password)).toBe(404);
    expect((await admin('POST', '/tokens/disabled-here/disable')).status).toBe(204);
    expect(await tagsStatus('disabled-here', password)).toBe(401);
  });

  it('refuses a rotated password at once, and keeps the other', async () => {
    const first = await createToken('rotated-here');
    const second = ((await (await admin('POST', '/tokens/rotated-here/passwords/2')).json()) as { password: string }).password;
    expect(await tagsStatus('rotated-here', first)).toBe(404);
    expect(await tagsStatus('rotated-here', second)).toBe(404);
    expect((await admin('POST', '/tokens/rotated-here/passwords/1')).status).toBe(200);
    expect(await tagsStatus('rotated-here', first)).toBe(401);
    expect(await tagsStatus('rotated-here', second)).toBe(404);
  });

  it('refuses a deleted token at once', async () => {
    const password = await createToken('deleted-here');
    expect(await tagsStatus('deleted-here', password)).toBe(404);
    expect((await admin('DELETE', '/tokens/deleted-here')).status).toBe(204);
    expect(await tagsStatus('deleted-here', password)).toBe(401);
  });
});

/**
 * Failed sign-ins are limited per identity name from one address and per client address, across every worker
 * process of a gateway (MERIDIAN_WORKERS=2: each request below comes on a connection of its own,
 * which the supervisor hands to the workers in turn, so the failures of one name land on both).
 * Past a limit, an attempt is refused unchecked: 429 with the TOOMANYREQUESTS body
 * (distribution-spec v1.1 "Error Codes") and Retry-After (RFC 9110 §10.2.3), on /v2 (Basic), the
 * token endpoint (Docker "Token Authentication Specification" GET, "OAuth2 Token Authentication"
 * POST) and the identity admin API alike; skopeo's login is refused while the name is limited.
 *
 * Loopback has a whole /8: requests sent from 127.0.0.2, .3 and .4 are three client addresses,
 * so each case has an address of its own, and the administrator's (127.0.0.1) stays unlimited.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../libs/testkit/src/database.js';
import { startGatewayProcess, type GatewayProcess } from '../libs/testkit/src/gateway-process.js';
import { basic, send, type Answer } from './support/loopback-http.js';
import { createSkopeo, skopeoFailure, type Skopeo } from './support/skopeo.js';

const ADMIN_PASSWORD = randomBytes(18).toString('base64url');

async function startLimitedGateway(workDir: string, database: TestDatabase, limits: { perName: number; perAddress: number; windowSeconds: number }): Promise<GatewayProcess> {
  const dataDir = path.join(workDir, `data-${limits.windowSeconds}`);
  await mkdir(dataDir);
  return startGatewayProcess({
    databaseUrl: database.url,
    dataDir,
    env: {
      MERIDIAN_AUTH: 'on',
      MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD,
      MERIDIAN_WORKERS: '2',
      // Connections handed to the workers in turn (by default they accept for themselves, and
      // one may take them all), so one name's failures are counted by both.
      NODE_CLUSTER_SCHED_POLICY: 'rr',
      MERIDIAN_SIGN_IN_FAILURES_PER_NAME: String(limits.perName),
      MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS: String(limits.perAddress),
      MERIDIAN_SIGN_IN_WINDOW_SECONDS: String(limits.windowSeconds),
    },
  });
}

describe('limits of failed sign-ins (MERIDIAN_AUTH=on, two workers)', () => {
  let workDir: string;
  let database: TestDatabase;
  let gateway: GatewayProcess;
  let skopeo: Skopeo;
  let alicePassword: string;
  /** Never signed in before the address case: its sign-in there is checked, not remembered. */
  let bobPassword: string;
  let carolPassword: string;

  const host = () => new URL(gateway.url).host;

  function expectTooManyRequests(answer: Answer, message: RegExp): void {
    expect(answer.status).toBe(429);
    const retryAfter = Number(answer.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = JSON.parse(answer.body) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]!.code).toBe('TOOMANYREQUESTS');
    expect(body.errors[0]!.message).toMatch(message);
  }

  /** The audit log's entries of refused sign-ins (detail.limited) for `identity`. */
  async function auditedRefusals(identity: string | null): Promise<Array<{ address: string; detail: Record<string, string> }>> {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ address: string; detail: Record<string, string> }>(
        `SELECT address, detail FROM audit_log WHERE action = 'sign-in' AND detail ? 'limited' AND identity IS NOT DISTINCT FROM $1 ORDER BY id`,
        [identity],
      );
      return rows;
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-sign-in-limits-'));
    database = await createTestDatabase();
    skopeo = await createSkopeo();
    // A window long enough that a loaded machine makes every attempt of a case within it.
    gateway = await startLimitedGateway(workDir, database, { perName: 3, perAddress: 5, windowSeconds: 60 });
    const createUser = async (name: string) => {
      const created = await send(`${gateway.url}/api/v1/users`, {
        method: 'POST',
        headers: { authorization: basic('admin', ADMIN_PASSWORD), 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      expect(created.status).toBe(201);
      return (JSON.parse(created.body) as { password: string }).password;
    };
    alicePassword = await createUser('alice');
    bobPassword = await createUser('bob');
    carolPassword = await createUser('carol');
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
    await skopeo?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('refuses a name from an address after its failures there on any endpoint and worker, even with the right password, and audits that once; elsewhere the name signs in', async () => {
    const from = '127.0.0.2';
    // Three failures, one through each way a password is given.
    expect((await send(`${gateway.url}/v2/`, { headers: { authorization: basic('alice', 'wrong-1') }, from })).status).toBe(401);
    expect((await send(`${gateway.url}/oauth2/token?service=meridian`, { headers: { authorization: basic('alice', 'wrong-2') }, from })).status).toBe(401);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expect((await send(`${gateway.url}/oauth2/token`, { method: 'POST', headers: form, body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'wrong-3' }).toString(), from })).status).toBe(401);

    const right = basic('alice', alicePassword);
    expectTooManyRequests(await send(`${gateway.url}/v2/`, { headers: { authorization: right }, from }), /too many failed sign-ins for alice from this address/);
    expectTooManyRequests(await send(`${gateway.url}/oauth2/token?service=meridian&scope=repository:x/y:pull`, { headers: { authorization: right }, from }), /for alice/);
    const post = await send(`${gateway.url}/oauth2/token`, { method: 'POST', headers: form, body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: alicePassword }).toString(), from });
    expectTooManyRequests(post, /for alice/);
    expectTooManyRequests(await send(`${gateway.url}/api/v1/users`, { headers: { authorization: right }, from }), /for alice/);
    // Another name from the same address is not limited; nor is the name from another address
    // (wrong passwords sent from anywhere must not lock its owner out), and the owner's success
    // there does not forgive the failures sent from the first.
    expect((await send(`${gateway.url}/v2/`, { headers: { authorization: basic('admin', ADMIN_PASSWORD) }, from })).status).toBe(200);
    expect((await send(`${gateway.url}/v2/`, { headers: { authorization: right }, from: '127.0.0.1' })).status).toBe(200);
    expectTooManyRequests(await send(`${gateway.url}/v2/`, { headers: { authorization: basic('alice', 'wrong-4') }, from }), /for alice from this address/);

    // Six refusals, one audit entry.
    const refusals = await auditedRefusals('alice');
    expect(refusals).toEqual([{ address: from, detail: { via: 'basic', limited: 'name' } }]);
  });

  it('refuses skopeo login with the right password after wrong ones, and says why', async () => {
    const login = (password: string) => skopeoFailure(skopeo, ['login', '--tls-verify=false', '--username', 'carol', '--password', password, host()]);
    for (const attempt of [1, 2, 3]) expect(await login(`wrong-${attempt}`)).toMatch(/invalid username\/password|unauthorized/i);
    // containers/image words a 429 from the token endpoint itself.
    expect(await login(carolPassword)).toMatch(/too many requests to registry/);
  });

  it('refuses an address after its failures, whatever name it gives, and a success there forgives only its own attempt', async () => {
    const from = '127.0.0.3';
    // Four names, one failure each: no name's limit is reached, the address has 4 of its 5.
    for (const name of ['mallory-1', 'mallory-2', 'mallory-3', 'mallory-4']) {
      expect((await send(`${gateway.url}/v2/`, { headers: { authorization: basic(name, 'guess') }, from })).status).toBe(401);
    }
    // Bob signs in from there: that does not clear the others' failures.
    expect((await send(`${gateway.url}/v2/`, { headers: { authorization: basic('bob', bobPassword) }, from })).status).toBe(200);
    expect((await send(`${gateway.url}/v2/`, { headers: { authorization: basic('mallory-5', 'guess') }, from })).status).toBe(401);
    // Five failures: now even a name with no failures, and the right password, is refused from there.
    expectTooManyRequests(await send(`${gateway.url}/v2/`, { headers: { authorization: basic('admin', `${ADMIN_PASSWORD}x`) }, from }), /from this address/);
    expectTooManyRequests(await send(`${gateway.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'not-a-token' }).toString(),
      from,
    }), /from this address/);
    // Elsewhere the administrator still signs in.
    expect((await send(`${gateway.url}/v2/`, { headers: { authorization: basic('admin', ADMIN_PASSWORD) }, from: '127.0.0.4' })).status).toBe(200);
    expect((await auditedRefusals('admin')).map((row) => row.detail)).toEqual([{ via: 'basic', limited: 'address' }]);
  });
});

describe('the window of failed sign-ins ends (MERIDIAN_SIGN_IN_WINDOW_SECONDS)', () => {
  let workDir: string;
  let database: TestDatabase;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-sign-in-window-'));
    database = await createTestDatabase();
    // Long enough that the refusal below comes within the window even on a busy machine, short enough to wait out.
    gateway = await startLimitedGateway(workDir, database, { perName: 1, perAddress: 50, windowSeconds: 8 });
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('takes the right password again once the window that held the failure is over', async () => {
    const right = { authorization: basic('admin', ADMIN_PASSWORD) };
    expect((await send(`${gateway.url}/v2/`, { headers: { authorization: basic('admin', 'wrong') } })).status).toBe(401);
    const refused = await send(`${gateway.url}/v2/`, { headers: right });
    expect(refused.status).toBe(429);
    // Wait for the window to end, as Retry-After tells a client to.
    let answer = refused;
    const deadline = Date.now() + 60_000;
    while (answer.status === 429) {
      if (Date.now() > deadline) throw new Error(`still refused 60 s after an 8 s window began (Retry-After: ${answer.headers['retry-after']})`);
      await new Promise((resolve) => setTimeout(resolve, Number(answer.headers['retry-after']) * 1000));
      answer = await send(`${gateway.url}/v2/`, { headers: right });
    }
    expect(answer.status).toBe(200);
  });
});

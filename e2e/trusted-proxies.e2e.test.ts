/**
 * A gateway behind proxies it trusts (MERIDIAN_TRUSTED_PROXIES=127.0.0.1, as the cluster's router
 * on loopback): a request whose TCP peer is 127.0.0.1 counts as coming from the nearest
 * X-Forwarded-For address that is no trusted proxy's (proxy-addr's rule, which express's
 * `trust proxy` applies), for the limits of failed sign-ins and in the audit log. A request from
 * any other peer counts as its peer's, whatever X-Forwarded-For it makes up. Requests are sent
 * from chosen loopback addresses (e2e/support/loopback-http.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../libs/testkit/src/database.js';
import { startGatewayProcess, type GatewayProcess } from '../libs/testkit/src/gateway-process.js';
import type { ClusterState } from '../deploy/cluster/cluster.js';
import { basic, send } from './support/loopback-http.js';
import { createTestCluster, type TestCluster } from './support/test-cluster.js';

const ADMIN_PASSWORD = randomBytes(18).toString('base64url');
const PROXY = '127.0.0.1';

describe('client addresses behind a trusted proxy (MERIDIAN_TRUSTED_PROXIES)', () => {
  let workDir: string;
  let database: TestDatabase;
  let gateway: GatewayProcess;

  /** A /v2 sign-in as `name`, from `from`, carrying `forwardedFor` as X-Forwarded-For. */
  const signIn = (name: string, password: string, from: string, forwardedFor: string) =>
    send(`${gateway.url}/v2/`, { headers: { authorization: basic(name, password), 'x-forwarded-for': forwardedFor }, from });

  /** The audit log's sign-in entries for `identity`: where each came from. */
  async function auditedSignIns(identity: string): Promise<Array<{ address: string; forwardedFor: string | null; limited: string | null }>> {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ address: string; forwardedFor: string | null; limited: string | null }>(
        `SELECT address, forwarded_for AS "forwardedFor", detail->>'limited' AS limited FROM audit_log WHERE action = 'sign-in' AND identity = $1 ORDER BY id`,
        [identity],
      );
      return rows;
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-trusted-proxies-'));
    database = await createTestDatabase();
    gateway = await startGatewayProcess({
      databaseUrl: database.url,
      dataDir: workDir,
      env: {
        MERIDIAN_AUTH: 'on',
        MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD,
        MERIDIAN_WORKERS: '1',
        MERIDIAN_TRUSTED_PROXIES: PROXY,
        // Only the address limit is reached below; a window long enough for a loaded machine.
        MERIDIAN_SIGN_IN_FAILURES_PER_NAME: '100',
        MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS: '3',
        MERIDIAN_SIGN_IN_WINDOW_SECONDS: '120',
      },
    });
  });

  afterAll(async () => {
    await gateway?.stop();
    await database?.drop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('counts failures through the proxy per forwarded client: one is refused, another is not', async () => {
    // What the client itself put first is not believed; the proxy's entry, last, is the client.
    for (const name of ['mallory-1', 'mallory-2', 'mallory-3']) expect((await signIn(name, 'guess', PROXY, '203.0.113.5, 198.51.100.1')).status).toBe(401);

    const refused = await signIn('admin', ADMIN_PASSWORD, PROXY, '198.51.100.1');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatch(/from this address/);
    // Another client behind the same proxy, and the proxy's own requests, are not limited.
    expect((await signIn('admin', ADMIN_PASSWORD, PROXY, '198.51.100.2')).status).toBe(200);
    expect((await send(`${gateway.url}/v2/`, { headers: { authorization: basic('admin', ADMIN_PASSWORD) }, from: PROXY })).status).toBe(200);

    expect(await auditedSignIns('mallory-1')).toEqual([{ address: '198.51.100.1', forwardedFor: '203.0.113.5, 198.51.100.1', limited: null }]);
    expect((await auditedSignIns('admin')).filter((row) => row.limited)).toEqual([{ address: '198.51.100.1', forwardedFor: '198.51.100.1', limited: 'address' }]);
  });

  it('counts a request from a peer it does not trust under that peer, whatever X-Forwarded-For it makes up', async () => {
    const untrusted = '127.0.0.2';
    for (const name of ['forger-1', 'forger-2', 'forger-3']) expect((await signIn(name, 'guess', untrusted, '198.51.100.3')).status).toBe(401);

    // The peer is refused under any claimed address; the address it claimed was charged nothing.
    // (New names: the administrator's password, once it has signed in, is remembered, not counted.)
    const refused = await signIn('forger-4', 'guess', untrusted, '198.51.100.4');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatch(/from this address/);
    expect((await signIn('forger-5', 'guess', PROXY, '198.51.100.3')).status).toBe(401);

    expect(await auditedSignIns('forger-1')).toEqual([{ address: untrusted, forwardedFor: '198.51.100.3', limited: null }]);
  });
});

describe('a cluster\'s gateways behind its router (`pnpm cluster up`)', () => {
  let testCluster: TestCluster;
  let state: ClusterState;

  beforeAll(async () => {
    testCluster = await createTestCluster('trusted-proxies', {
      auth: true,
      env: { MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD, MERIDIAN_SIGN_IN_FAILURES_PER_NAME: '100', MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS: '3', MERIDIAN_SIGN_IN_WINDOW_SECONDS: '120' },
    });
    state = await testCluster.cluster.up(1, { worker: false });
  }, 300_000);

  afterAll(async () => {
    await testCluster?.dispose();
  }, 120_000);

  it('limits each client of the router by its own address, not every client by the router\'s', async () => {
    // /v2/ is proxied (a Basic sign-in there is the gateway's); the router appends each client's address.
    const viaRouter = (name: string, password: string, from: string) => send(`${state.router}/v2/`, { headers: { authorization: basic(name, password) }, from });
    for (const name of ['mallory-1', 'mallory-2', 'mallory-3']) expect((await viaRouter(name, 'guess', '127.0.0.2')).status).toBe(401);
    expect((await viaRouter('mallory-4', 'guess', '127.0.0.2')).status).toBe(429);
    expect((await viaRouter('admin', ADMIN_PASSWORD, '127.0.0.3')).status).toBe(200);
  });
});

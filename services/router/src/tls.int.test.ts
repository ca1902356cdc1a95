/**
 * The router over TLS (README, "TLS"): a control plane and a region serving HTTPS with a
 * certificate signed by an authority this test makes, and the router given that authority
 * (MERIDIAN_TLS_CA) and a certificate of its own. A client trusting the authority reaches the
 * region through the router over HTTPS; a router not given the authority can read no region
 * list and reaches no region.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch } from 'undici';
import { startTestControlPlane, type TestControlPlane } from '@meridian/control-plane/testing';
import { startTestGateway, type TestGateway } from '@meridian/gateway/testing';
import { createTestCertificates, type TestCertificates } from '@meridian/testkit';
import { createApp, type Router } from './app.js';
import { loadConfig } from './config.js';

let home: string;
let certificates: TestCertificates;
let trusting: Agent;
let cp: TestControlPlane;
let region: TestGateway;
const routers: Router[] = [];

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'meridian-router-tls-'));
  certificates = await createTestCertificates(home);
  trusting = new Agent({ connect: { ca: await readFile(certificates.caFile) } });
  const served = { MERIDIAN_TLS_CERT: certificates.certFile, MERIDIAN_TLS_KEY: certificates.keyFile };
  cp = await startTestControlPlane(served);
  region = await startTestGateway({ ...served, MERIDIAN_REGION: 'eu-west' });
  const registered = await fetch(`${cp.url}/api/v1/regions`, {
    method: 'POST',
    dispatcher: trusting,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'eu-west', http: region.url, grpc: '127.0.0.1:7001', lat: 53.35, lon: -6.26 }),
  });
  expect(registered.status).toBe(201);
});

afterAll(async () => {
  for (const router of routers) await router.close();
  await region?.close();
  await cp?.close();
  await trusting?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

async function startRouter(env: Record<string, string>): Promise<{ router: Router; url: string }> {
  const router = await createApp(
    loadConfig({
      PORT: '0',
      MERIDIAN_CONTROL_PLANE: cp.url,
      MERIDIAN_ROUTER_PROBE_INTERVAL_SECONDS: '0.1',
      MERIDIAN_ROUTER_PROBE_TIMEOUT_SECONDS: '5',
      MERIDIAN_ROUTER_REGION_REFRESH_SECONDS: '0.2',
      MERIDIAN_ROUTER_HEALTHY_AFTER: '1',
      MERIDIAN_TLS_CERT: certificates.certFile,
      MERIDIAN_TLS_KEY: certificates.keyFile,
      ...env,
    }),
    pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  );
  routers.push(router);
  return { router, url: await router.listen() };
}

/** The status of GET /v2/ through the router, once the router has a healthy region (a liveness bound, not a speed). */
async function versionCheckThrough(url: string, boundMs = 30_000): Promise<number> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const response = await fetch(`${url}/v2/`, { dispatcher: trusting });
    await response.body?.cancel();
    if (response.status === 200 || Date.now() > deadline) return response.status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the router over TLS', () => {
  it('serves HTTPS and reaches an HTTPS control plane and region through the authority it is given', async () => {
    const { url } = await startRouter({ MERIDIAN_TLS_CA: certificates.caFile });
    expect(url).toMatch(/^https:\/\//);
    expect(await versionCheckThrough(url)).toBe(200);
  });

  it('without the authority, reads no region list and sends nobody anywhere', async () => {
    const { router, url } = await startRouter({});
    // listen() waits for the first read of the region list, which the certificate check refused.
    // One line an operator can act on: the address, Node's reason, and the setting that fixes it.
    expect(router.directory.status()).toMatchObject({
      loaded: false,
      error: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+ presents a certificate that no trusted authority signed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): set MERIDIAN_TLS_CA to /),
    });
    expect(router.directory.regions()).toEqual([]);
    const response = await fetch(`${url}/v2/`, { dispatcher: trusting });
    await response.body?.cancel();
    expect(response.status).toBe(503);
  });
});

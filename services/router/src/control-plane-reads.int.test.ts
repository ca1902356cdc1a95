/**
 * The router's reads of the region list carry a `traceparent` saying their trace is not recorded
 * (README, "Observability"): the router records no traces, and without one the control plane
 * would start a trace of its own for a share of these reads, a span tree nobody asked for every
 * few minutes (seen as stray spans in e2e/telemetry-traces). Each router here reads from a plain
 * HTTP server of its own that answers the region list and keeps the headers of each read.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '@meridian/testkit';
import { createApp, type Router } from './app.js';
import { loadConfig } from './config.js';

/** A W3C traceparent whose flags say its trace is not recorded. */
const UNSAMPLED_PARENT = /^00-[\da-f]{32}-[\da-f]{16}-00$/;

const servers: http.Server[] = [];
const routers: Router[] = [];

afterEach(async () => {
  for (const router of routers.splice(0)) await router.close();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A control plane of this test's own, for one router: it answers the region list and keeps the headers of each read. */
async function startControlPlane(): Promise<{ url: string; reads: http.IncomingHttpHeaders[] }> {
  const reads: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/api/v1/regions') reads.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ regions: [] }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, reads };
}

async function startRouter(controlPlaneUrl: string, env: Record<string, string>): Promise<void> {
  const router = await createApp(
    loadConfig({ PORT: '0', MERIDIAN_CONTROL_PLANE: controlPlaneUrl, MERIDIAN_ROUTER_REGION_REFRESH_SECONDS: '0.1', ...env }),
    pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  );
  routers.push(router);
  await router.listen();
}

describe('the router reading the region list', () => {
  it.each([
    ['without a cluster secret', {}],
    ['with a cluster secret (signed reads)', { MERIDIAN_CLUSTER_SECRET: 'a-cluster-secret-of-at-least-32-characters' }],
  ])('sends an unsampled traceparent on every read, %s', async (_name, env) => {
    const { url, reads } = await startControlPlane();
    await startRouter(url, env);
    await until(() => reads.length >= 3, { what: 'three reads of the region list' });
    const traceparents = reads.map((headers) => headers.traceparent);
    for (const traceparent of traceparents) expect(traceparent).toMatch(UNSAMPLED_PARENT);
    // A trace id of its own each time, as any caller outside a trace would send.
    expect(new Set(traceparents).size).toBe(traceparents.length);
    if ('MERIDIAN_CLUSTER_SECRET' in env) for (const headers of reads) expect(headers.authorization).toMatch(/^Bearer /);
  });
});

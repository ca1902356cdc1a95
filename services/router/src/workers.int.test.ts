/**
 * The router as its entry point runs it with MERIDIAN_WORKERS=2: a supervisor and two router
 * processes on one port, in front of a real control plane and one real gateway (region eu-west).
 * What it must keep true with several workers: every worker serves, a worker that dies is
 * replaced, and `/metrics`, whichever worker answers it, speaks for all of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { MediaType } from '@meridian/oci';
import { startTestControlPlane, type TestControlPlane } from '@meridian/control-plane/testing';
import { startTestGateway, type TestGateway } from '@meridian/gateway/testing';
import { buildImage } from '@meridian/testkit';

const routerMain = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');
const WORKERS = 2;

let cp: TestControlPlane;
let region: TestGateway;
let router: ChildProcess;
let routerUrl: string;
let output = '';

/** The pids of the router processes whose parent is `pid`: the supervisor's workers (they run main.ts too). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) comes second after the command name, which sits in parentheses.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(routerMain)) children.push(Number(entry));
    } catch {
      // exited while listed
    }
  }
  return children;
}

/** Polls `check` until it returns something other than undefined (a liveness bound, not a speed). */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, boundMs = 60_000): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${boundMs / 1000} s: ${what}\n${output.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A manifest GET through the router on a connection of its own, which the supervisor hands to the next worker. */
async function pullManifest(): Promise<number> {
  const agent = new Agent({ pipelining: 0 });
  try {
    const response = await request(`${routerUrl}/v2/team/app/manifests/latest`, { headers: { accept: MediaType.OciManifest }, dispatcher: agent });
    await response.body.dump();
    return response.statusCode;
  } finally {
    await agent.close();
  }
}

/** The value of the series `name` with these labels (among others) in a scrape of the router's /metrics. */
async function scrape(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const response = await request(`${routerUrl}/metrics`, { reset: true });
  const text = await response.body.text();
  const wanted = Object.entries(labels).map(([label, value]) => `${label}="${value}"`);
  const line = text.split('\n').find((entry) => entry.startsWith(`${name}{`) && wanted.every((pair) => entry.includes(pair)));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

beforeAll(async () => {
  cp = await startTestControlPlane();
  region = await startTestGateway({ MERIDIAN_REGION: 'eu-west' });
  await region.client.pushImage('team/app', 'latest', buildImage());
  const registered = await cp.request('POST', '/api/v1/regions', { name: 'eu-west', http: region.url, grpc: '127.0.0.1:1', lat: 53.35, lon: -6.26 });
  expect(registered.status).toBe(201);
  router = spawn(process.execPath, ['--import', 'tsx', routerMain], {
    env: {
      ...process.env,
      PORT: '0',
      MERIDIAN_WORKERS: String(WORKERS),
      // Connections handed to the workers in turn, so the ten pulls below reach both of them
      // (by default the workers accept for themselves, and one may take every connection).
      NODE_CLUSTER_SCHED_POLICY: 'rr',
      MERIDIAN_CONTROL_PLANE: cp.url,
      MERIDIAN_ROUTER_PROBE_INTERVAL_SECONDS: '0.2',
      MERIDIAN_ROUTER_PROBE_TIMEOUT_SECONDS: '5',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => void (output += chunk.toString());
  router.stdout!.on('data', keep);
  router.stderr!.on('data', keep);
  routerUrl = await eventually('the router listens', async () => /Meridian router listening on (\S+)/.exec(output)?.[1], 120_000);
}, 180_000);

afterAll(async () => {
  if (router && router.exitCode === null) {
    const exited = new Promise((resolve) => router.once('exit', resolve));
    router.kill('SIGTERM');
    await exited;
  }
  await region?.close();
  await cp?.close();
});

describe('a router of several worker processes (MERIDIAN_WORKERS)', () => {
  it('runs that many workers, and /metrics counts every worker\'s requests whichever worker is scraped', async () => {
    expect(childrenOf(router.pid!)).toHaveLength(WORKERS);
    const routed = () => scrape('meridian_router_routed_total', { target_region: 'eu-west', mode: 'proxy' });
    const before = (await routed()) ?? 0;
    const pulls = 10;
    for (let i = 0; i < pulls; i++) expect(await pullManifest()).toBe(200);
    // Each scrape may reach either worker; each must give the sum over both.
    for (let i = 0; i < 4; i++) expect(await routed()).toBe(before + pulls);
    // Every worker probes the region and counts it healthy: 1, not one per worker.
    for (let i = 0; i < 4; i++) expect(await scrape('meridian_region_healthy', { target_region: 'eu-west' })).toBe(1);
  });

  it('replaces a worker that dies, and goes on serving', async () => {
    const [victim, survivor] = childrenOf(router.pid!);
    process.kill(victim!, 'SIGKILL');
    const replaced = await eventually('a new worker replaces the killed one', async () => {
      const now = childrenOf(router.pid!);
      return now.length === WORKERS && !now.includes(victim!) ? now : undefined;
    });
    expect(replaced).toContain(survivor);
    expect(router.exitCode).toBeNull();
    // The new worker listens once it has read the region list and probed: both workers serve.
    for (let i = 0; i < 6; i++) expect(await pullManifest()).toBe(200);
    await eventually('the supervisor logs the death', async () => (/router worker died; starting another/.test(output) ? true : undefined));
  });
});

/**
 * Nearest-region pulls end to end: a cluster of three regions at distinct places and the router
 * in front of them, every part its own process (`pnpm cluster up`'s Cluster), and clients that
 * choose where they are by the loopback address they connect from (the cluster's location table
 * puts 127.0.N.0/24 near its Nth region).
 *
 * Which region served a request is read from the regions, not from the router's headers: each
 * gateway's own request counter (`meridian_http_requests_total` on its /metrics), and the content
 * itself. The cluster runs without the replication worker, so each region holds what was pushed
 * to it under `where/am-i:latest`, and a manifest's digest tells which region served it.
 *
 * - a client from each place is served by its own region;
 * - skopeo pushes an image through the router and pulls it back through the router;
 * - the nearest region's gateway killed during a pull loop: the pulls go on from the next
 *   nearest region, and the region is routed to again once it is back;
 * - the router started again with another number of processes (Cluster.restartRouter), at its
 *   address, the regions running on.
 *
 * The `it`s run in order. Waits are bounded liveness checks, never measures of speed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '@meridian/oci';
import { OciTestClient, buildImage, sha256, type TestImage } from '@meridian/testkit';
import { Cluster, clientAddressNear, isAlive, type ClusterState } from '../deploy/cluster/cluster.js';
import { processTree } from './bench/cpu.js';
import { dropDatabases, eventually } from './support/cluster-run.js';
import { readLayout, writeSingleImageLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, type Skopeo } from './support/skopeo.js';

const POSTGRES = process.env.MERIDIAN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ACCEPT = [MediaType.OciManifest, MediaType.OciIndex].join(', ');

const run = randomBytes(4).toString('hex');
const databasePrefix = `meridian_e2e_${run}`;
let home: string;
let cluster: Cluster;
let state: ClusterState;
let skopeo: Skopeo;
let layout: SingleImageLayout;
const agents = new Map<string, Agent>();
/** A different image under where/am-i:latest in each region. */
const marks = new Map<string, TestImage>();

const region = (name: string) => state.regions.find((entry) => entry.name === name)!;

/** An HTTP client connecting from `address`, so the router's location table places it. */
function clientAt(address: string): Agent {
  let agent = agents.get(address);
  if (!agent) agents.set(address, (agent = new Agent({ localAddress: address })));
  return agent;
}

/** The region whose image a manifest GET through the router got, from a client near `place`. */
async function servedBy(place: string): Promise<string | undefined> {
  const response = await fetch(`${state.router}/v2/where/am-i/manifests/latest`, { headers: { accept: ACCEPT }, dispatcher: clientAt(clientAddressNear(place)) });
  if (response.status !== 200) return undefined;
  const digest = sha256(Buffer.from(await response.arrayBuffer()));
  return [...marks].find(([, image]) => image.digest === digest)?.[0];
}

/**
 * One whole pull through the router from a client near `place`, as a registry client makes it:
 * the manifest, then every blob it names (blob GETs follow the router's redirect to the region),
 * each checked against its digest.
 */
async function pull(place: string, repository: string, tag: string): Promise<void> {
  const dispatcher = clientAt(clientAddressNear(place));
  const manifest = await fetch(`${state.router}/v2/${repository}/manifests/${tag}`, { headers: { accept: ACCEPT }, dispatcher });
  if (manifest.status !== 200) throw new Error(`manifest: ${manifest.status}`);
  const body = JSON.parse(await manifest.text()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  for (const { digest } of [body.config, ...body.layers]) {
    const blob = await fetch(`${state.router}/v2/${repository}/blobs/${digest}`, { dispatcher });
    if (blob.status !== 200) throw new Error(`blob ${digest}: ${blob.status}`);
    if (sha256(Buffer.from(await blob.arrayBuffer())) !== digest) throw new Error(`blob ${digest}: other bytes`);
  }
}

/** The manifest requests of one method a region's gateway has answered, from its own /metrics. */
async function manifestRequestsServed(name: string, method: 'GET' | 'PUT'): Promise<number> {
  const text = await (await fetch(`${region(name).http}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('meridian_http_requests_total{') && line.includes('route="manifest"') && line.includes(`method="${method}"`))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/** How many manifest requests of `method` each region answered while `work` ran. */
async function servedDuring(method: 'GET' | 'PUT', work: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await Promise.all(state.regions.map((entry) => manifestRequestsServed(entry.name, method)));
  await work();
  const after = await Promise.all(state.regions.map((entry) => manifestRequestsServed(entry.name, method)));
  return Object.fromEntries(state.regions.map((entry, i) => [entry.name, after[i]! - before[i]!]));
}

async function regionHealthy(name: string): Promise<number | undefined> {
  const text = await (await fetch(`${state.router}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith('meridian_region_healthy{') && entry.includes(`target_region="${name}"`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-router-'));
  // Pushes and pulls without credentials; identity-cluster.e2e.test.ts runs a cluster with auth on.
  cluster = new Cluster({ home, postgresUrl: POSTGRES.replace(/\/[^/]*$/, ''), databasePrefix, queuePrefix: `meridian-e2e-${run}`, auth: false });
  [state, layout, skopeo] = await Promise.all([
    cluster.up(3, { worker: false }),
    writeSingleImageLayout(path.join(home, 'layout'), { tag: 'v1', layers: 2, layerSize: 1024 * 1024 + 7 }),
    createSkopeo(),
  ]);
  for (const entry of state.regions) marks.set(entry.name, await new OciTestClient(entry.http).pushImage('where/am-i', 'latest', buildImage()));
}, 240_000);

afterAll(async () => {
  for (const agent of agents.values()) await agent.close();
  await cluster?.down();
  await skopeo?.dispose();
  await dropDatabases(POSTGRES, databasePrefix);
  if (home) await rm(home, { recursive: true, force: true });
}, 120_000);

describe('the router in front of three regions', () => {
  it('serves a client from each place from its own region: its content, and its request counter moves, no other', async () => {
    for (const entry of state.regions) {
      const served = await servedDuring('GET', async () => expect(await servedBy(entry.name)).toBe(entry.name));
      expect(served).toEqual(Object.fromEntries(state.regions.map((other) => [other.name, other.name === entry.name ? 1 : 0])));
    }
  });

  it('takes a push from skopeo into one region and gives it back to skopeo (both through the router)', async () => {
    const routerHost = new URL(state.router).host;
    const pushes = await servedDuring('PUT', () => skopeo.copy(`oci:${layout.dir}:v1`, `docker://${routerHost}/routed/app:v1`, { preserveDigests: true }));
    // skopeo connects from 127.0.0.1, which the location table does not place: the default region, eu-west.
    expect(pushes).toEqual({ 'eu-west': 1, 'us-east': 0, 'ap-southeast': 0 });
    const held = await fetch(`${region('eu-west').http}/v2/routed/app/manifests/v1`, { method: 'HEAD', headers: { accept: ACCEPT } });
    expect(held.headers.get('docker-content-digest')).toBe(layout.manifestDigest);

    const pulled = path.join(home, 'pulled');
    await skopeo.copy(`docker://${routerHost}/routed/app:v1`, `oci:${pulled}:v1`, { preserveDigests: true });
    expect(await readLayout(pulled, 'v1')).toMatchObject({
      kind: 'image',
      image: { manifestDigest: layout.manifestDigest, configDigest: layout.configDigest, layerDigests: layout.layerDigests },
    });
  });

  it('keeps pulls going from the next region when the nearest one\'s gateway is killed, and routes to it again once it is back', async () => {
    // The image every region holds, pushed to each (there is no replication in this cluster).
    const image = buildImage({ layers: 2, layerSize: 256 * 1024 });
    for (const entry of state.regions) await new OciTestClient(entry.http).pushImage('failover/app', 'v1', image);
    await pull('eu-west', 'failover/app', 'v1');

    const outcomes: Array<{ at: number; ok: boolean }> = [];
    let looping = true;
    const loop = (async () => {
      while (looping) {
        const ok = await pull('eu-west', 'failover/app', 'v1').then(() => true, () => false);
        outcomes.push({ at: Date.now(), ok });
      }
    })();

    const killedAt = Date.now();
    process.kill(region('eu-west').pid, 'SIGKILL');
    await eventually('eu-west taken out', async () => ((await regionHealthy('eu-west')) === 0 ? true : undefined));
    // From some moment after the kill every pull succeeds: wait for a run of them, then watch on.
    const streakStart = await eventually('20 pulls in a row succeeding after the kill', async () => {
      const streak: Array<{ at: number }> = [];
      for (const outcome of outcomes) {
        if (outcome.at <= killedAt) continue;
        if (outcome.ok) streak.push(outcome);
        else streak.length = 0;
      }
      return streak.length >= 20 ? streak[0]!.at : undefined;
    });
    const watchedFrom = outcomes.length;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    looping = false;
    await loop;
    expect(outcomes.slice(watchedFrom).every((outcome) => outcome.ok)).toBe(true);
    expect(await servedBy('eu-west')).toBe('us-east');
    console.info(`router failover: pulls from eu-west's clients succeed again ${((streakStart - killedAt) / 1000).toFixed(1)} s after its gateway was killed`);

    // `pnpm cluster up` starts what is not running: eu-west comes back on its port, with its data.
    state = await cluster.up(3, { worker: false });
    expect(isAlive(region('eu-west').pid)).toBe(true);
    await eventually('eu-west put back', async () => ((await regionHealthy('eu-west')) === 1 ? true : undefined));
    expect(await servedBy('eu-west')).toBe('eu-west');
    await pull('eu-west', 'failover/app', 'v1');
  });

  it('restartRouter starts the router again with the processes asked for, at its address, the regions running on', async () => {
    const before = state.routerPid;
    const regionPids = state.regions.map((entry) => entry.pid);
    // This cluster's router runs as one process; `pnpm bench routing --pin` gives it one core and
    // asks for one, so two is what shows the count taken.
    expect(processTree(before)).toHaveLength(1);
    state = await cluster.restartRouter(2);
    expect(isAlive(before)).toBe(false);
    // The supervisor and its two workers.
    expect(processTree(state.routerPid)).toHaveLength(3);
    expect(state.regions.map((entry) => entry.pid)).toEqual(regionPids);
    expect(await servedBy('us-east')).toBe('us-east');
  });
});

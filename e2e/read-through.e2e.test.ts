/**
 * Read-through and read-your-writes across regions, on a cluster of real processes (pnpm
 * cluster's Cluster) whose replication worker is stopped, so that no content reaches a region
 * except through read-through:
 *
 * - an image pushed to one region is pulled (skopeo) from the two others at once, by tag;
 * - blobs uploaded to one region and the manifest pushed to another: accepted, pulled everywhere;
 * - a region just added, still empty, serves a whole image pull, and holds the blobs after;
 * - a range of a blob the region lacks is answered with exactly its bytes;
 * - bytes from a peer that do not hash to the digest reach a client only as a cut response,
 *   and the next peer fills the blob;
 * - twenty concurrent pulls of one 64 MiB blob the region lacks make one fetch from a peer;
 * - a peer that hangs is asked once, then passed over for a while;
 * - a client that goes away in the middle of a fill leaves no partial blob, and the fill lands;
 * - an edge region with a cache size holds at most that much after pulls of three times as much.
 *
 * Every pulled blob is hashed and compared with its digest (distribution-spec v1.1 "Pulling
 * blobs": the client verifies the content it receives against the digest it asked for). The
 * `it`s form one story and run in order. Waits are bounded liveness checks, never speed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '@meridian/oci';
import { OciTestClient, buildImage, sha256 } from '@meridian/testkit';
import { Cluster, isAlive, type ClusterState } from '../deploy/cluster/cluster.js';
import { readLayout, writeSingleImageLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, type Skopeo } from './support/skopeo.js';
import { dropDatabases, eventually } from './support/cluster-run.js';

const POSTGRES = process.env.MERIDIAN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const run = randomBytes(4).toString('hex');
const databasePrefix = `meridian_e2e_rt_${run}`;
let home: string;
let cluster: Cluster;
let state: ClusterState;
let skopeo: Skopeo;
let image: SingleImageLayout;

const region = (name: string) => state.regions.find((r) => r.name === name)!;
const client = (name: string) => new OciTestClient(region(name).http);
const host = (name: string) => new URL(region(name).http).host;

/** GETs a blob from a region and hashes the body as it streams; rejects on anything but 200. */
async function pulledDigest(name: string, repository: string, digest: string): Promise<string> {
  const c = client(name);
  const response = await c.fetch(c.url('blob', { name: repository, digest }));
  if (response.status !== 200) throw new Error(`${name}: GET ${repository}@${digest} answered ${response.status} ${await response.text()}`);
  const hash = createHash('sha256');
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

/** The tags a region lists for a repository (none when it does not know the repository). */
async function tagsOf(name: string, repository: string): Promise<string[]> {
  const response = await client(name).fetch(client(name).url('tags', { name: repository }));
  if (response.status === 404) return [];
  expect(response.status).toBe(200);
  return ((await response.json()) as { tags: string[] }).tags;
}

/** Where a region's store keeps a blob's committed bytes (libs/blobstore paths.ts). */
function blobFile(name: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(region(name).dataDir, 'store', 'blobs', 'sha256', hex.slice(0, 2), hex);
}

async function fileDigest(file: string): Promise<string> {
  return sha256(await readFile(file));
}

/** The state a region's metadata records for a blob (present, pending), or undefined. */
async function recordedState(name: string, digest: string): Promise<string | undefined> {
  const db = new pg.Client({ connectionString: region(name).databaseUrl });
  await db.connect();
  try {
    const result = await db.query<{ state: string }>('SELECT state FROM blobs WHERE digest = $1', [digest]);
    return result.rows[0]?.state;
  } finally {
    await db.end();
  }
}

/** How many times a region's log says it fetched this blob from a peer. */
async function peerFetches(name: string, digest: string): Promise<number> {
  const log = await readFile(cluster.logOf(name), 'utf8');
  return log.split('\n').filter((line) => line.includes(`read-through: fetching ${digest}`)).length;
}

/** A region's `meridian_readthrough_fills_total{result}`, from its /metrics. */
async function fillsCounted(name: string, result: 'ok' | 'failed'): Promise<number> {
  const text = await (await fetch(`${region(name).http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('meridian_readthrough_fills_total{') && l.includes(`result="${result}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** A counter without labels of its own (`meridian_blob_cache_misses_total`, ...) from a region's /metrics. */
async function counted(name: string, metric: string): Promise<number> {
  const text = await (await fetch(`${region(name).http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) || l.startsWith(`${metric} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** A process's peak resident set size over its life (the kernel's high-water mark, VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

async function stopWorker(): Promise<void> {
  if (!isAlive(state.workerPid)) return;
  process.kill(state.workerPid, 'SIGTERM');
  await eventually('the worker gone', async () => (isAlive(state.workerPid) ? undefined : true));
}

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-read-through-'));
  cluster = new Cluster({
    home,
    // Pushes and pulls without credentials; identity-cluster.e2e.test.ts runs a cluster with auth on.
    auth: false,
    postgresUrl: POSTGRES.replace(/\/[^/]*$/, ''),
    databasePrefix,
    queuePrefix: `meridian-e2e-rt-${run}`,
    logLevel: 'info',
  });
  [state, image, skopeo] = await Promise.all([
    cluster.up(3, { worker: false }),
    writeSingleImageLayout(path.join(home, 'image'), { tag: 'v1', layers: 2, layerSize: 3 * 1024 * 1024 + 17 }),
    createSkopeo(),
  ]);
  await stopWorker();
}, 240_000);

afterAll(async () => {
  await cluster?.down();
  await skopeo?.dispose();
  await dropDatabases(POSTGRES, databasePrefix);
  if (home) await rm(home, { recursive: true, force: true });
}, 120_000);

describe('read-through and read-your-writes, with replication held back', () => {
  it('an image pushed to one region is pulled by tag from the two others at once, every digest intact', async () => {
    await skopeo.copy(`oci:${image.dir}:v1`, `docker://${host('eu-west')}/rt/app:v1`, { preserveDigests: true });
    const pulls = ['us-east', 'ap-southeast'].map(async (name) => {
      const into = path.join(home, `pulled-${name}`);
      await skopeo.copy(`docker://${host(name)}/rt/app:v1`, `oci:${into}:v1`, { preserveDigests: true });
      return readLayout(into, 'v1');
    });
    for (const layout of await Promise.all(pulls)) {
      expect(layout).toMatchObject({
        kind: 'image',
        image: { manifestDigest: image.manifestDigest, configDigest: image.configDigest, layerDigests: image.layerDigests },
      });
    }
    // Nothing replicated: the tag is not recorded in the regions that served it (the blobs they
    // filled are, so the repository may be known).
    expect(await tagsOf('us-east', 'rt/app')).not.toContain('v1');
  });

  it('blobs uploaded to one region and the manifest pushed to another: accepted, and every region serves the image', async () => {
    const built = buildImage({ layers: 2, layerSize: 1024 * 1024 + 3 });
    for (const blob of [built.config, ...built.layers]) await client('eu-west').pushBlob('rt/split', blob.bytes);
    // distribution-spec v1.1 "Pushing Manifests": the blobs it references must be known; here, to a peer.
    const pushed = await client('us-east').pushManifest('rt/split', 'v1', built.manifestBytes, built.mediaType);
    expect(pushed.status).toBe(201);
    expect(pushed.headers.get('docker-content-digest')).toBe(built.digest);
    expect(await recordedState('us-east', built.layers[0]!.digest)).toBe('pending');
    for (const name of ['eu-west', 'us-east', 'ap-southeast']) {
      const c = client(name);
      const manifest = await c.fetch(c.url('manifest', { name: 'rt/split', reference: 'v1' }), { headers: { Accept: MediaType.OciManifest } });
      expect(manifest.status).toBe(200);
      expect(sha256(Buffer.from(await manifest.arrayBuffer()))).toBe(built.digest);
      for (const blob of [built.config, ...built.layers]) expect(await pulledDigest(name, 'rt/split', blob.digest)).toBe(blob.digest);
    }
    expect(await recordedState('us-east', built.layers[0]!.digest)).toBe('present');
  });

  it('a region just added and still empty serves a whole image pull, and holds its blobs afterwards', async () => {
    state = await cluster.up(4, { worker: false });
    const added = state.regions[3]!.name;
    const into = path.join(home, 'pulled-added');
    await skopeo.copy(`docker://${host(added)}/rt/app:v1`, `oci:${into}:v1`, { preserveDigests: true });
    expect(await readLayout(into, 'v1')).toMatchObject({
      kind: 'image',
      image: { manifestDigest: image.manifestDigest, configDigest: image.configDigest, layerDigests: image.layerDigests },
    });
    for (const digest of [image.configDigest, ...image.layerDigests]) {
      expect(await fileDigest(blobFile(added, digest))).toBe(digest);
      expect(await recordedState(added, digest)).toBe('present');
    }
  });

  it('a range of a blob the region lacks is answered 206 with exactly those bytes', async () => {
    const bytes = randomBytes(8 * 1024 * 1024 + 5);
    const digest = await client('eu-west').pushBlob('rt/range', bytes);
    const c = client('us-east');
    // distribution-spec v1.1 "Pulling blobs": a Range request is answered 206 with Content-Range.
    const response = await c.fetch(c.url('blob', { name: 'rt/range', digest }), { headers: { Range: 'bytes=1048576-3145727' } });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes 1048576-3145727/${bytes.length}`);
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes.subarray(1048576, 3145728))).toBe(true);
    await eventually('the blob filled', async () => ((await recordedState('us-east', digest)) === 'present' ? true : undefined));
    expect(await pulledDigest('us-east', 'rt/range', digest)).toBe(digest);
  });

  it('bytes from the nearest peer that do not match the digest reach the client only as a cut response; the next peer fills the blob', async () => {
    const bytes = randomBytes(4 * 1024 * 1024);
    const digest = await client('eu-west').pushBlob('rt/corrupt', bytes);
    await client('us-east').pushBlob('rt/corrupt', bytes);
    // The same size, other bytes, in the peer nearest ap-southeast: only hashing can tell.
    await writeFile(blobFile('eu-west', digest), randomBytes(bytes.length));
    await expect(pulledDigest('ap-southeast', 'rt/corrupt', digest)).rejects.toThrow();
    await eventually('the blob filled from us-east', async () => ((await recordedState('ap-southeast', digest)) === 'present' ? true : undefined));
    expect(await fileDigest(blobFile('ap-southeast', digest))).toBe(digest);
    expect(await pulledDigest('ap-southeast', 'rt/corrupt', digest)).toBe(digest);
    // eu-west's bytes, refused, then us-east's.
    expect(await peerFetches('ap-southeast', digest)).toBe(2);
  });

  it('twenty concurrent pulls of one 64 MiB blob the region lacks make one fetch from a peer', async () => {
    const bytes = randomBytes(64 * 1024 * 1024);
    const digest = await client('eu-west').pushBlob('rt/big', bytes);
    const fillsBefore = await fillsCounted('ap-southeast', 'ok');
    const pulls = await Promise.all(Array.from({ length: 20 }, () => pulledDigest('ap-southeast', 'rt/big', digest)));
    expect(pulls).toEqual(Array.from({ length: 20 }, () => digest));
    expect(await peerFetches('ap-southeast', digest)).toBe(1);
    expect(await fillsCounted('ap-southeast', 'ok')).toBe(fillsBefore + 1);
    expect(await fileDigest(blobFile('ap-southeast', digest))).toBe(digest);
    // Twenty readers of 64 MiB: the gateway held no copy of the blob per reader (1.25 GiB in all).
    const peak = await peakRss(region('ap-southeast').pid);
    console.info(`ap-southeast gateway peak RSS after 20 concurrent pulls of a 64 MiB fill: ${(peak / 1024 / 1024).toFixed(0)} MiB`);
    expect(peak).toBeLessThan(384 * 1024 * 1024);
  }, 300_000);

  it('a peer that hangs is passed over after one lookup runs out of time: pulls go on from the others', async () => {
    const blobs = [randomBytes(256 * 1024), randomBytes(256 * 1024)];
    const digests = [];
    for (const bytes of blobs) digests.push(await client('eu-west').pushBlob('rt/hung', bytes));
    const hung = region('us-east').pid;
    const countLines = async () => (await readFile(cluster.logOf('ap-southeast'), 'utf8')).split('\n').filter((line) => line.includes('us-east did not answer within')).length;
    const before = await countLines();
    process.kill(hung, 'SIGSTOP');
    try {
      for (const digest of digests) expect(await pulledDigest('ap-southeast', 'rt/hung', digest)).toBe(digest);
    } finally {
      process.kill(hung, 'SIGCONT');
    }
    // The first pull waited for us-east's lookup to run out; the second did not ask it.
    expect((await countLines()) - before).toBe(1);
  });

  it('a client that goes away in the middle of a fill leaves no partial blob; the fill lands whole', async () => {
    const bytes = randomBytes(96 * 1024 * 1024);
    const digest = await client('eu-west').pushBlob('rt/abandoned', bytes);
    const c = client('us-east');
    const abort = new AbortController();
    const response = await c.fetch(c.url('blob', { name: 'rt/abandoned', digest }), { signal: abort.signal });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    await reader.read();
    abort.abort();
    await reader.cancel().catch(() => undefined);
    // Whenever the blob's file is there, it is the whole, verified blob: bytes become the blob
    // only by a rename after verification.
    await eventually('the fill committed', async () => ((await recordedState('us-east', digest)) === 'present' ? true : undefined));
    expect((await stat(blobFile('us-east', digest))).size).toBe(bytes.length);
    expect(await fileDigest(blobFile('us-east', digest))).toBe(digest);
    // Nor is a transfer left behind: the committed fill removed its session's bytes.
    const uploads = path.join(region('us-east').dataDir, 'store', 'uploads');
    for (const id of await readdir(uploads).catch(() => [])) {
      // Neither `data` nor `data.<holder>` (the store's paths.ts).
      expect((await readdir(path.join(uploads, id)).catch(() => [])).filter((name) => name.startsWith('data'))).toEqual([]);
    }
    expect(await pulledDigest('us-east', 'rt/abandoned', digest)).toBe(digest);
  }, 300_000);

  it('an edge region of 100 MiB holds at most 100 MiB after pulls of 300 MiB of distinct blobs, every pull served', async () => {
    const limit = 100 * 1024 * 1024;
    state = await cluster.up(5, { worker: false, cacheBytes: { 'eu-central': limit } });
    const edge = 'eu-central';
    const listed = (await fetch(`${state.controlPlane}/api/v1/regions`).then((r) => r.json())) as { regions: Array<{ name: string; cacheBytes?: number }> };
    expect(listed.regions.find((r) => r.name === edge)?.cacheBytes).toBe(limit);
    const digests: string[] = [];
    for (let i = 0; i < 30; i++) digests.push(await client('eu-west').pushBlob('rt/edge', randomBytes(10 * 1024 * 1024)));
    for (const digest of digests) expect(await pulledDigest(edge, 'rt/edge', digest)).toBe(digest);
    // Evictions follow the fills: the store comes back under its size, and stays there.
    const storeBytes = async () => {
      const root = path.join(region(edge).dataDir, 'store', 'blobs');
      const files = await readdir(root, { recursive: true, withFileTypes: true });
      let total = 0;
      for (const file of files) if (file.isFile()) total += (await stat(path.join(file.parentPath, file.name))).size;
      return total;
    };
    const held = await eventually('the edge region back under its size', async () => {
      const total = await storeBytes();
      return total <= limit ? total : undefined;
    });
    expect(held).toBeGreaterThan(0);
    // Every first pull was a miss filled from a peer; 300 MiB into 100 MiB evicted at least 20 blobs of 10 MiB.
    expect(await counted(edge, 'meridian_blob_cache_misses_total')).toBeGreaterThanOrEqual(30);
    expect(await counted(edge, 'meridian_blob_cache_evictions_total')).toBeGreaterThanOrEqual(20);
    expect(await counted(edge, 'meridian_blob_cache_hits_total')).toBe(0);
    expect(await pulledDigest(edge, 'rt/edge', digests[29]!)).toBe(digests[29]);
    expect(await counted(edge, 'meridian_blob_cache_hits_total')).toBe(1);
    // The most recently pulled blob is held; an evicted one is filled again when asked.
    expect(await fileDigest(blobFile(edge, digests[29]!))).toBe(digests[29]);
    expect(await recordedState(edge, digests[0]!)).toBe('pending');
    expect(await pulledDigest(edge, 'rt/edge', digests[0]!)).toBe(digests[0]);
  }, 300_000);
});

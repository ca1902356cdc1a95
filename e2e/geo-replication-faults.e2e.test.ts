/**
 * Geo-replication when things go wrong and when operators change the cluster, on a cluster of
 * real processes (pnpm cluster's Cluster) with a Redis of its own on a spare port, so that
 * stopping and emptying it touches nothing else on the machine:
 *
 * - a region added to a cluster that holds images is backfilled and serves them all;
 * - a region removed gets nothing more;
 * - with the control plane stopped, every region serves pulls and takes pushes, which replicate
 *   once it is back;
 * - Redis restarted empty while pushes go on: every push replicates;
 * - one tag pushed to two regions at once: every region converges on one digest;
 * - the worker killed in the middle of a 256 MiB blob: after a restart the copy completes, and
 *   the target holds exactly the right bytes;
 * - a blob's bytes overwritten in a region's store: reconciliation with verification notices,
 *   and the region serves the right bytes again;
 * - a region restored from a backup taken before a delete serves the deleted image again, until
 *   reconciliation applies the delete there once more;
 * - `meridian region remove --purge --yes`: the region deletes everything it holds and leaves
 *   the cluster, the other regions keep serving it all.
 *
 * The `it`s form one story and run in order. Waits are bounded liveness checks, never speed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '@meridian/oci';
import { OciTestClient, buildImage, sha256, type TestImage } from '@meridian/testkit';
import { Cluster, isAlive, REPO_ROOT, type ClusterState } from '../deploy/cluster/cluster.js';
import { findFreePort } from './support/distribution.js';
import { dropDatabases, eventually } from './support/cluster-run.js';

const POSTGRES = process.env.MERIDIAN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const run = randomBytes(4).toString('hex');
const databasePrefix = `meridian_e2e_${run}`;
let home: string;
let cluster: Cluster;
let state: ClusterState;
let redisPort: number;
let redis: ChildProcess | undefined;

const client = (name: string) => new OciTestClient(state.regions.find((region) => region.name === name)!.http);

async function digestServed(region: string, repository: string, reference: string): Promise<string | undefined> {
  const c = client(region);
  const response = await c.fetch(c.url('manifest', { name: repository, reference }), { method: 'HEAD', headers: { Accept: MediaType.OciManifest } });
  return response.status === 200 ? (response.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** Whether `region` lists `tag` for the repository: what it holds, as a pull served by read-through from a peer is not. */
async function tagListed(region: string, repository: string, tag: string): Promise<boolean> {
  const c = client(region);
  const response = await c.fetch(c.url('tags', { name: repository }));
  return response.status === 200 && ((await response.json()) as { tags: string[] }).tags.includes(tag);
}

/** The tag replicated into `region`: held there (listed), and naming `digest`. */
const arrived = (region: string, repository: string, tag: string, digest: string) =>
  eventually(`${repository}:${tag} in ${region}`, async () =>
    (await tagListed(region, repository, tag)) && (await digestServed(region, repository, tag)) === digest ? true : undefined,
  );

async function startRedis(): Promise<void> {
  redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await eventually('redis up', async () => {
    const socket = await import('node:net').then((net) => net.connect(redisPort, '127.0.0.1'));
    await once(socket, 'connect');
    socket.destroy();
    return true;
  });
}

async function stopRedis(): Promise<void> {
  if (!redis || redis.exitCode !== null) return;
  redis.kill('SIGKILL');
  await once(redis, 'exit');
}

async function stopProcess(pid: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  process.kill(pid, signal);
  await eventually(`process ${pid} gone`, async () => (isAlive(pid) ? undefined : true));
}

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-geo-faults-'));
  redisPort = await findFreePort();
  await startRedis();
  cluster = new Cluster({
    home,
    // Pushes and pulls without credentials; identity-cluster.e2e.test.ts runs a cluster with auth on.
    auth: false,
    postgresUrl: POSTGRES.replace(/\/[^/]*$/, ''),
    redisUrl: `redis://127.0.0.1:${redisPort}`,
    databasePrefix,
    logLevel: 'info',
    // A quick requeue, so work lost with Redis comes back within the test's patience.
    env: { MERIDIAN_REQUEUE_INTERVAL_SECONDS: '2' },
  });
  state = await cluster.up(3);
}, 240_000);

afterAll(async () => {
  await cluster?.down();
  await stopRedis();
  await dropDatabases(POSTGRES, databasePrefix);
  if (home) await rm(home, { recursive: true, force: true });
}, 120_000);

describe('geo-replication under faults and operator changes', () => {
  const early: TestImage[] = [];

  it('a region added to a cluster holding images is backfilled, turns active, and serves the whole catalog from its own store', async () => {
    for (let i = 0; i < 5; i++) early.push(await client('eu-west').pushImage('faults/early', `v${i}`, buildImage()));
    await arrived('us-east', 'faults/early', 'v4', early[4]!.digest);
    state = await cluster.up(4);
    const added = state.regions[3]!.name;
    await eventually(`${added} active`, async () => {
      const list = (await fetch(`${state.controlPlane}/api/v1/regions`).then((r) => r.json())) as { regions: Array<{ name: string; state: string }> };
      return list.regions.find((region) => region.name === added)?.state === 'active' ? true : undefined;
    });
    for (const [i, image] of early.entries()) {
      expect(await digestServed(added, 'faults/early', `v${i}`)).toBe(image.digest);
      const layer = image.layers[0]!;
      const c = client(added);
      const pulled = await c.fetch(c.url('blob', { name: 'faults/early', digest: layer.digest }));
      expect(sha256(Buffer.from(await pulled.arrayBuffer()))).toBe(layer.digest);
    }
  });

  it('a removed region drains: nothing targets it any more', async () => {
    const removed = await fetch(`${state.controlPlane}/api/v1/regions/ap-southeast`, { method: 'DELETE' });
    expect(removed.status).toBe(202);
    const image = await client('eu-west').pushImage('faults/after-remove', 'v1', buildImage());
    await arrived('us-east', 'faults/after-remove', 'v1', image.digest);
    await arrived(state.regions[3]!.name, 'faults/after-remove', 'v1', image.digest);
    const status = (await fetch(`${state.controlPlane}/api/v1/replication/status?repository=faults/after-remove&reference=v1`).then((r) => r.json())) as {
      regions: Array<{ name: string; state: string }>;
    };
    expect(status.regions.find((region) => region.name === 'ap-southeast')?.state ?? 'absent').toBe('absent');
    // It never receives the image: its tag list does not hold it. (A manifest GET there may still
    // answer, by read-through from a peer, once the region has learnt its peers.)
    expect(await tagListed('ap-southeast', 'faults/after-remove', 'v1')).toBe(false);
  });

  it('with the control plane stopped, pulls everywhere and pushes succeed, and replicate once it is back', async () => {
    await stopProcess(state.controlPlanePid);
    const image = await client('eu-west').pushImage('faults/cp-down', 'v1', buildImage());
    for (const region of ['us-east', 'ap-southeast', state.regions[3]!.name]) {
      expect(await digestServed(region, 'faults/early', 'v0')).toBe(early[0]!.digest);
    }
    // Not replicated while the control plane is away (a pull may still be served, by read-through
    // from eu-west, which records nothing).
    expect(await tagListed('us-east', 'faults/cp-down', 'v1')).toBe(false);
    state = await cluster.up(4);
    await arrived('us-east', 'faults/cp-down', 'v1', image.digest);
    await arrived(state.regions[3]!.name, 'faults/cp-down', 'v1', image.digest);
  });

  it('Redis restarted empty while pushes go on: every push replicates', async () => {
    const images: TestImage[] = [];
    for (let i = 0; i < 3; i++) images.push(await client('eu-west').pushImage('faults/redis', `a${i}`, buildImage()));
    await stopRedis();
    for (let i = 0; i < 3; i++) images.push(await client('eu-west').pushImage('faults/redis', `b${i}`, buildImage()));
    await startRedis();
    for (let i = 0; i < 3; i++) images.push(await client('eu-west').pushImage('faults/redis', `c${i}`, buildImage()));
    const tags = ['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'c0', 'c1', 'c2'];
    for (const [i, image] of images.entries()) await arrived('us-east', 'faults/redis', tags[i]!, image.digest);
  });

  it('one tag pushed to two regions at the same moment: every region converges on one digest', async () => {
    const [one, two] = [buildImage(), buildImage()];
    await Promise.all([client('eu-west').pushImage('faults/race', 'latest', one), client('us-east').pushImage('faults/race', 'latest', two)]);
    const regions = ['eu-west', 'us-east', state.regions[3]!.name];
    const agreed = await eventually('one digest everywhere', async () => {
      const digests = await Promise.all(regions.map((region) => digestServed(region, 'faults/race', 'latest')));
      return digests.every((digest) => digest !== undefined && digest === digests[0]) ? digests[0] : undefined;
    });
    expect([one.digest, two.digest]).toContain(agreed);
  });

  it('the worker killed in the middle of a 256 MiB blob: after a restart the copy completes with exactly the right bytes', async () => {
    const target = 'us-east';
    const image = buildImage({ layers: 1, layerSize: 256 * 1024 * 1024 });
    const big = image.layers[0]!;
    const source = client('eu-west');
    for (const blob of [image.config, ...image.layers]) await source.pushBlob('faults/big', blob.bytes);
    // Mid-transfer: the target's upload folder for replicated bytes has started to grow.
    const uploads = path.join(state.regions.find((region) => region.name === target)!.dataDir, 'store', 'uploads');
    await eventually('the copy under way', async () => {
      for (const id of await readdir(uploads).catch(() => [])) {
        // `data`, or `data.<holder>` while a request writes it (the store's paths.ts).
        const file = (await readdir(path.join(uploads, id)).catch(() => [])).find((name) => name === 'data' || name.startsWith('data.'));
        const size = file === undefined ? 0 : await stat(path.join(uploads, id, file)).then((s) => s.size, () => 0);
        if (size > 0 && size < big.bytes.length) return true;
      }
      return undefined;
    });
    await stopProcess(state.workerPid, 'SIGKILL');
    state = await cluster.up(4);
    expect((await source.pushManifest('faults/big', 'v1', image.manifestBytes, image.mediaType)).status).toBe(201);
    await arrived(target, 'faults/big', 'v1', image.digest);
    const c = client(target);
    const pulled = await c.fetch(c.url('blob', { name: 'faults/big', digest: big.digest }));
    const hash = createHash('sha256');
    for await (const chunk of pulled.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
    expect(`sha256:${hash.digest('hex')}`).toBe(big.digest);
  }, 300_000);

  it('a blob corrupted in a region\'s store: reconciliation with verification notices it, and the region serves the right bytes again', async () => {
    const target = 'us-east';
    const layer = early[1]!.layers[0]!;
    const c = client(target);
    const pull = async () => sha256(Buffer.from(await (await c.fetch(c.url('blob', { name: 'faults/early', digest: layer.digest }))).arrayBuffer()));
    expect(await pull()).toBe(layer.digest);
    const dataDir = state.regions.find((region) => region.name === target)!.dataDir;
    const hex = layer.digest.slice('sha256:'.length);
    // The same size, other bytes: a stat cannot tell, only hashing can.
    await writeFile(path.join(dataDir, 'store', 'blobs', 'sha256', hex.slice(0, 2), hex), randomBytes(layer.bytes.length));
    expect(await pull()).not.toBe(layer.digest);

    const answer = await fetch(`${state.controlPlane}/api/v1/reconcile?region=${target}&verify=true`, { method: 'POST' });
    expect(answer.status).toBe(200);
    const { regions } = (await answer.json()) as { regions: Array<{ region: string; pendingBlobs: number; repaired: number }> };
    expect(regions).toEqual([expect.objectContaining({ region: target, pendingBlobs: 1 })]);
    expect(regions[0]!.repaired).toBeGreaterThanOrEqual(1);
    await eventually(`${layer.digest} repaired in ${target}`, async () => ((await pull()) === layer.digest ? true : undefined));
  }, 300_000);

  it('a region restored from a backup taken before a delete: reconciliation deletes there again what the catalog deleted', async () => {
    const target = 'us-east';
    const region = () => state.regions.find((r) => r.name === target)!;
    const image = await client('eu-west').pushImage('faults/restored', 'v1', buildImage());
    await arrived(target, 'faults/restored', 'v1', image.digest);
    const database = new URL(region().databaseUrl).pathname.slice(1);
    const backup = `${database}_backup`;
    const admin = new pg.Client({ connectionString: POSTGRES });
    await admin.connect();
    try {
      // A backup of the region's database while it holds the image.
      await stopProcess(region().pid);
      await admin.query(`CREATE DATABASE ${backup} TEMPLATE ${database}`);
      state = await cluster.up(state.regions.length);
      // The image deleted in another region (distribution-spec v1.1 "Deleting Manifests"), and so in this one.
      const source = client('eu-west');
      expect((await source.fetch(source.url('manifest', { name: 'faults/restored', reference: image.digest }), { method: 'DELETE' })).status).toBe(202);
      await eventually(`faults/restored gone from ${target}`, async () => ((await digestServed(target, 'faults/restored', image.digest)) === undefined ? true : undefined));
      // The region restored from the backup serves the deleted image again.
      await stopProcess(region().pid);
      await admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${database} TEMPLATE ${backup}`);
      state = await cluster.up(state.regions.length);
    } finally {
      await admin.end();
    }
    expect(await digestServed(target, 'faults/restored', 'v1')).toBe(image.digest);

    // Once the delete is older than the settling time, a pass finds the manifest and its tag.
    const summary = await eventually('reconciliation finds what the catalog deleted', async () => {
      const answer = await fetch(`${state.controlPlane}/api/v1/reconcile?region=${target}`, { method: 'POST' });
      const { regions } = (await answer.json()) as { regions: Array<{ region: string; extra: number; repaired: number; unrelayed: number }> };
      return regions[0]!.extra > 0 ? regions[0] : undefined;
    });
    expect(summary).toMatchObject({ region: target, extra: 2, unrelayed: 0 });
    expect(summary.repaired).toBeGreaterThanOrEqual(1);
    await eventually(`faults/restored deleted again in ${target}`, async () =>
      (await digestServed(target, 'faults/restored', image.digest)) === undefined && (await digestServed(target, 'faults/restored', 'v1')) === undefined ? true : undefined,
    );
    // The region where it was deleted never held it again.
    expect(await digestServed('eu-west', 'faults/restored', image.digest)).toBeUndefined();
  }, 300_000);

  it('meridian region remove --purge --yes: the region deletes everything it holds and leaves the cluster; the others keep it all', async () => {
    const target = state.regions.find((r) => r.name === 'ap-southeast')!;
    const image = await client('eu-west').pushImage('faults/purged', 'v1', buildImage());
    for (const region of ['ap-southeast', 'us-east']) await arrived(region, 'faults/purged', 'v1', image.digest);
    const cli = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'services/cli/src/main.ts'), 'region', 'remove', 'ap-southeast', '--purge', '--yes'], {
      cwd: REPO_ROOT,
      env: { ...process.env, MERIDIAN_SERVER: state.controlPlane },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    cli.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    cli.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(cli, 'close');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^region ap-southeast purged and removed from the cluster; it deleted:\n  \d+ repositories, \d+ manifests, \d+ tags, \d+ blob links\n  \d+ blobs \(.+\)\n/);

    const regions = (await fetch(`${state.controlPlane}/api/v1/regions`).then((r) => r.json())) as { regions: Array<{ name: string }> };
    expect(regions.regions.map((region) => region.name)).not.toContain('ap-southeast');
    const database = new pg.Client({ connectionString: target.databaseUrl });
    await database.connect();
    try {
      const { rows } = await database.query(
        'SELECT (SELECT count(*) FROM repositories)::int AS repositories, (SELECT count(*) FROM manifests)::int AS manifests, (SELECT count(*) FROM blobs)::int AS blobs',
      );
      expect(rows[0]).toEqual({ repositories: 0, manifests: 0, blobs: 0 });
    } finally {
      await database.end();
    }
    const blobFiles = await readdir(path.join(target.dataDir, 'store', 'blobs'), { recursive: true, withFileTypes: true }).catch(() => []);
    expect(blobFiles.filter((entry) => entry.isFile())).toEqual([]);
    expect(await digestServed('ap-southeast', 'faults/purged', 'v1')).toBeUndefined();
    expect(await digestServed('us-east', 'faults/purged', 'v1')).toBe(image.digest);
    expect(await digestServed('eu-west', 'faults/purged', 'v1')).toBe(image.digest);
  }, 120_000);
});

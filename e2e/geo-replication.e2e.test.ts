/**
 * Geo-replication end to end: a cluster of three regions on loopback, each its own gateway
 * process with its own database and data directory, the control plane, and the BullMQ
 * replication worker (`pnpm cluster up`'s Cluster). skopeo pushes to one region; the content
 * appears, exactly, in the others; deletes made in one region disappear from the rest.
 *
 * The `it`s form one story and run in order. Waiting for replication is bounded (a liveness
 * bound, far above what it takes), never a measure of speed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '@meridian/oci';
import { OciTestClient, buildImage, createEntitledReplicaClient, sha256 } from '@meridian/testkit';
import { Cluster, type ClusterState } from '../deploy/cluster/cluster.js';
import { readLayout, sha256Digest, writeMultiPlatformLayout, writeSingleImageLayout, type MultiPlatformLayout, type SingleImageLayout } from './support/oci-layout.js';
import { createSkopeo, type Skopeo } from './support/skopeo.js';
import { dropDatabases, eventually } from './support/cluster-run.js';

const POSTGRES = process.env.MERIDIAN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let home: string;
let cluster: Cluster;
let state: ClusterState;
let skopeo: Skopeo;
let single: SingleImageLayout;
let multi: MultiPlatformLayout;
const run = randomBytes(4).toString('hex');
const databasePrefix = `meridian_e2e_${run}`;

const [A, B, C] = [0, 1, 2];
const host = (region: number) => new URL(state.regions[region]!.http).host;
const client = (region: number) => new OciTestClient(state.regions[region]!.http);

/** The manifest's digest as `region` serves it, or undefined while it answers anything but 200. */
async function servedDigest(region: number, repository: string, reference: string): Promise<string | undefined> {
  const response = await client(region).fetch(client(region).url('manifest', { name: repository, reference }), {
    method: 'HEAD',
    headers: { Accept: [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList].join(', ') },
  });
  return response.status === 200 ? (response.headers.get('docker-content-digest') ?? undefined) : undefined;
}

async function status(region: number, repository: string, reference: string): Promise<number> {
  const response = await client(region).fetch(client(region).url('manifest', { name: repository, reference }), { method: 'HEAD', headers: { Accept: '*/*' } });
  return response.status;
}

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-geo-'));
  cluster = new Cluster({
    home,
    // Pushes and pulls without credentials; identity-cluster.e2e.test.ts runs a cluster with auth on.
    auth: false,
    postgresUrl: POSTGRES.replace(/\/[^/]*$/, ''),
    databasePrefix,
    queuePrefix: `meridian-e2e-${run}`,
    logLevel: 'info',
  });
  [state, single, multi, skopeo] = await Promise.all([
    cluster.up(3),
    writeSingleImageLayout(path.join(home, 'single'), { tag: 'v1', layers: 2, layerSize: 2 * 1024 * 1024 + 17 }),
    writeMultiPlatformLayout(path.join(home, 'multi'), {
      tag: 'v1',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    }),
    createSkopeo(),
  ]);
}, 240_000);

afterAll(async () => {
  await cluster?.down();
  await skopeo?.dispose();
  await dropDatabases(POSTGRES, databasePrefix);
  if (home) await rm(home, { recursive: true, force: true });
}, 120_000);

describe('geo-replication across three regions', () => {
  it('a single-platform image pushed to one region with skopeo is served, exactly, by the others', async () => {
    await skopeo.copy(`oci:${single.dir}:v1`, `docker://${host(A)}/geo/single:v1`, { preserveDigests: true });
    for (const region of [B, C]) {
      expect(await eventually(`geo/single:v1 in ${state.regions[region]!.name}`, () => servedDigest(region, 'geo/single', 'v1'))).toBe(single.manifestDigest);
    }
    // Pulled out of C with every blob: the layout skopeo writes has the pushed digests.
    const pulled = path.join(home, 'pulled-single');
    await skopeo.copy(`docker://${host(C)}/geo/single:v1`, `oci:${pulled}:v1`, { preserveDigests: true });
    const layout = await readLayout(pulled, 'v1');
    expect(layout).toMatchObject({
      kind: 'image',
      image: { manifestDigest: single.manifestDigest, configDigest: single.configDigest, layerDigests: single.layerDigests },
    });
  });

  // The replica protocol is authenticated (README, "Geo-replication", the replica protocol's
  // authentication): the cluster's processes carry service tokens from its secret, a stranger does not.
  it("a region's replica server refuses a call signed with another secret, and answers one signed with the cluster's", async () => {
    const region = state.regions[B]!;
    const health = (secret: string) => {
      const replica = createEntitledReplicaClient(region.grpc, region.name, { secret });
      return new Promise<{ region: string }>((resolve, reject) => replica.health({}, (err, reply) => (replica.close(), err ? reject(err) : resolve(reply!))));
    };
    await expect(health(`${cluster.clusterSecret()} but not this cluster's`)).rejects.toMatchObject({ code: 16 /* UNAUTHENTICATED */ });
    expect(await health(cluster.clusterSecret())).toMatchObject({ region: region.name });
  });

  it('a multi-platform index arrives with every platform image it lists (indexes and their children)', async () => {
    await skopeo.copy(`oci:${multi.dir}:v1`, `docker://${host(A)}/geo/multi:v1`, { all: true, preserveDigests: true });
    for (const region of [B, C]) {
      expect(await eventually('geo/multi:v1', () => servedDigest(region, 'geo/multi', 'v1'))).toBe(multi.indexDigest);
      for (const image of multi.images) expect(await servedDigest(region, 'geo/multi', image.manifestDigest)).toBe(image.manifestDigest);
    }
    const indexBytes = await skopeo.inspectRaw(`docker://${host(B)}/geo/multi:v1`);
    expect(sha256Digest(indexBytes)).toBe(multi.indexDigest);
  });

  it('an artifact with a subject replicates, and every region answers the referrers API alike', async () => {
    const subject = await client(A).pushImage('geo/art', 'base', buildImage());
    const artifactBlob = Buffer.from(`signature ${run}`);
    await client(A).pushBlob('geo/art', artifactBlob);
    const artifact = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 },
      layers: [{ mediaType: 'application/octet-stream', digest: sha256(artifactBlob), size: artifactBlob.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.manifestBytes.length },
    };
    await client(A).pushBlob('geo/art', Buffer.from('{}'));
    const pushed = await client(A).pushManifest('geo/art', sha256(Buffer.from(JSON.stringify(artifact))), artifact);
    expect(pushed.status).toBe(201);
    const referrersOf = async (region: number) => {
      const response = await client(region).fetch(client(region).url('referrers', { name: 'geo/art', digest: subject.digest }));
      return (await response.json()) as { manifests: Array<{ digest: string; artifactType?: string }> };
    };
    const expected = await referrersOf(A);
    expect(expected.manifests).toHaveLength(1);
    for (const region of [B, C]) {
      const answer = await eventually('referrers of geo/art', async () => {
        const found = await referrersOf(region);
        return found.manifests.length > 0 ? found : undefined;
      });
      expect(answer).toEqual(expected);
    }
  });

  it('tag lists answer the same in every region', async () => {
    await skopeo.copy(`oci:${single.dir}:v1`, `docker://${host(A)}/geo/single:v2`, { preserveDigests: true });
    const expected = await skopeo.listTags(`docker://${host(A)}/geo/single`);
    expect(expected).toEqual(['v1', 'v2']);
    for (const region of [B, C]) {
      // A pull of v2 is served at once (read-your-writes asks A); the list shows it once it has replicated.
      await eventually('geo/single:v2 listed', async () => ((await skopeo.listTags(`docker://${host(region)}/geo/single`)).includes('v2') ? true : undefined));
      expect(await skopeo.listTags(`docker://${host(region)}/geo/single`)).toEqual(expected);
    }
  });

  it('a tag deleted in another region disappears from every region, its manifest staying', async () => {
    const removed = await client(B).fetch(client(B).url('manifest', { name: 'geo/single', reference: 'v2' }), { method: 'DELETE' });
    expect(removed.status).toBe(202);
    for (const region of [A, C]) {
      await eventually('geo/single:v2 gone', async () => ((await status(region, 'geo/single', 'v2')) === 404 ? true : undefined));
      expect(await servedDigest(region, 'geo/single', single.manifestDigest)).toBe(single.manifestDigest);
    }
  });

  it('a manifest deleted by digest in another region (skopeo delete) disappears from every region, with its tags', async () => {
    await skopeo.delete(`docker://${host(B)}/geo/single@${single.manifestDigest}`);
    for (const region of [A, C]) {
      await eventually('geo/single manifest gone', async () => ((await status(region, 'geo/single', single.manifestDigest)) === 404 ? true : undefined));
      expect(await status(region, 'geo/single', 'v1')).toBe(404);
    }
  });
});


/**
 * The region's replica server (libs/proto replica.proto) over real gRPC, Postgres and the
 * filesystem store: blob transfers verified and resumable, manifests applied only with their
 * content present, tags converging by clock (last writer wins), deletes leaving tombstones, and
 * replicated writes kept out of the outbox.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStore, STORAGE_DRIVERS } from '@meridian/blobstore';
import { Metadata, createPool } from '@meridian/metadata';
import { LookupCache, ReplicaApplier, UploadStateSigner, createRegistry, type ManifestService } from '@meridian/registry';
import { ReplicaDialer, createClusterHttp, createReplicaClient, grpc, type ReplicaClient } from '@meridian/proto';
import { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import { ServiceTokenIssuer, ServiceTokenVerifier } from '@meridian/auth';
import {
  TEST_CLUSTER_SECRET,
  buildImage,
  buildIndex,
  createEntitledReplicaClient,
  createTestDatabase,
  sha256,
  type TestDatabase,
  type TestImage,
} from '@meridian/testkit';
import { MediaType } from '@meridian/oci';
import http from 'node:http';
import { FakeReplicaRegion } from '@meridian/testkit/fake-replica-region';
import { until } from '@meridian/testkit';
import { PeerRegions } from '../replication/peer-regions.js';
import { createReplicaServer, type ReplicaServer } from './replica-server.js';

let database: TestDatabase;
let pool: ReturnType<typeof createPool>;
let metadata: Metadata;
let dataDir: string;
let server: ReplicaServer;
let client: ReplicaClient;
let port: number;
let local: ManifestService;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ databaseUrl: database.url, max: 4 });
  metadata = new Metadata(pool);
  dataDir = await mkdtemp(path.join(tmpdir(), 'meridian-replica-'));
  const store = new BlobStore(STORAGE_DRIVERS.filesystem({ rootDirectory: path.join(dataDir, 'store'), directWrites: false }));
  const cache = new LookupCache({ maxEntries: 100 });
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  local = createRegistry({ metadata, blobStore: store, cache, uploadSigner: new UploadStateSigner('s'.repeat(32)), logger, region: 'here' }).manifests;
  server = createReplicaServer({
    region: 'here',
    replica: new ReplicaApplier(metadata, store, cache),
    readiness: async () => ({ ready: true, detail: '' }),
    logger,
    callers: new ServiceTokenVerifier(TEST_CLUSTER_SECRET, 'here'),
  });
  port = await server.listen('127.0.0.1', 0);
  client = createEntitledReplicaClient(`127.0.0.1:${port}`, 'here');
});

afterAll(async () => {
  client?.close();
  await server?.close(1000);
  await pool?.end();
  await database?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A unary call as a promise; rejects with the ServiceError (its `code` is the status). */
function call<Request, Reply>(method: (request: Request, callback: (err: grpc.ServiceError | null, reply?: Reply) => void) => unknown, request: Request): Promise<Reply> {
  return new Promise((resolve, reject) => method.call(client, request, (err, reply) => (err ? reject(err) : resolve(reply!))));
}

/** PutBlob: a header, then `bytes` in pieces; `endEarly` stops after that many bytes, as a broken sender would. */
function putBlob(repository: string, digest: string, size: number, offset: number, bytes: Buffer, endEarly?: number) {
  return new Promise<{ written: boolean }>((resolve, reject) => {
    const stream = client.putBlob((err, reply) => (err ? reject(err) : resolve(reply!)));
    stream.write({ header: { repository, digest, size: String(size), offset: String(offset) } });
    const limit = endEarly ?? bytes.length;
    for (let start = 0; start < limit; start += 100_000) stream.write({ chunk: bytes.subarray(start, Math.min(start + 100_000, limit)) });
    stream.end();
  });
}

function getBlob(digest: string, offset: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const stream = client.getBlob({ digest, offset: String(offset) });
    stream.on('data', (chunk: { data: Buffer }) => parts.push(chunk.data));
    stream.on('error', reject);
    stream.on('end', () => resolve(Buffer.concat(parts)));
  });
}

const linkBlobs = (repository: string, blobs: Array<{ digest: string; size: number }>) =>
  call(client.linkBlobs, { repository, blobs: blobs.map((b) => ({ digest: b.digest, size: String(b.size) })) }).then((reply) => reply.blobs);

async function sendImage(repository: string, image: TestImage): Promise<void> {
  for (const blob of [image.config, ...image.layers]) await putBlob(repository, blob.digest, blob.bytes.length, 0, blob.bytes);
}

/** Waits for `condition` to hold: a state, not a duration (the test's own timeout bounds it). */
const clock = (hlc: bigint, origin: string) => ({ hlc: hlc.toString(), origin });

/** Where the filesystem store keeps a blob's bytes. */
const blobPath = (digest: string) => path.join(dataDir, 'store', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));

/** Every blob link the region reports, with its state; `verify` re-hashes their bytes. */
async function inventoryBlobs(verify: boolean): Promise<Array<{ repository: string; digest: string; state: string }>> {
  const blobs: Array<{ repository: string; digest: string; state: string }> = [];
  let pageToken = '';
  do {
    const page = await call(client.listInventory, { pageToken, pageSize: 3, verify });
    blobs.push(...page.blobs.map((b) => ({ repository: b.repository, digest: b.digest, state: b.state })));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return blobs;
}

/**
 * FetchBlob (replica.proto): the region reads a blob from a peer the control plane lists, straight
 * into its store. The peers are real gRPC regions (testkit's FakeReplicaRegion) listed by a
 * control plane that answers the region list, read through the gateway's own PeerRegions.
 */
describe('replica server: FetchBlob', () => {
  let sources: FakeReplicaRegion[];
  let controlPlane: http.Server;
  let peers: PeerRegions;
  let fetcher: ReplicaServer;
  let fetchClient: ReplicaClient;

  beforeAll(async () => {
    sources = await Promise.all(['eu-west', 'us-east', 'ap-southeast'].map((name) => FakeReplicaRegion.start(name)));
    const region = (name: string, grpcAddress: string) => ({ name, http: 'http://127.0.0.1:1', grpc: grpcAddress, lat: 0, lon: 0, state: 'active', routing: true, heartbeatAt: null, backfill: null });
    controlPlane = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ regions: [region('here', '127.0.0.1:1'), ...sources.map((source) => region(source.name, source.address))] }));
    });
    await new Promise<void>((resolve) => controlPlane.listen(0, '127.0.0.1', resolve));
    const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
    peers = new PeerRegions({
      region: 'here',
      controlPlane: new ControlPlaneHttp({ url: `http://127.0.0.1:${(controlPlane.address() as { port: number }).port}`, fetch: createClusterHttp().fetch }),
      dialer: new ReplicaDialer({ tokens: new ServiceTokenIssuer(TEST_CLUSTER_SECRET, 'gateway') }),
      logger,
    });
    const store = new BlobStore(STORAGE_DRIVERS.filesystem({ rootDirectory: path.join(dataDir, 'store'), directWrites: false }));
    fetcher = createReplicaServer({
      region: 'here',
      replica: new ReplicaApplier(metadata, store, new LookupCache({ maxEntries: 10 })),
      readiness: async () => ({ ready: true, detail: '' }),
      logger,
      callers: new ServiceTokenVerifier(TEST_CLUSTER_SECRET, 'here'),
      openPeerBlob: (name, digest, offset) => peers.openBlob(name, digest, offset),
    });
    fetchClient = createEntitledReplicaClient(`127.0.0.1:${await fetcher.listen('127.0.0.1', 0)}`, 'here');
  });

  afterAll(async () => {
    fetchClient?.close();
    await fetcher?.close(1000);
    peers?.close();
    controlPlane?.close();
    for (const source of sources ?? []) await source.close();
  });

  const fetchBlob = (repository: string, blob: { digest: string; size: number }, source: string) =>
    new Promise<{ written: boolean; received: string; sourceCode: number; sourceDetail: string }>((resolve, reject) =>
      fetchClient.fetchBlob({ repository, digest: blob.digest, size: String(blob.size), source }, (err, reply) => (err ? reject(err) : resolve(reply!))),
    );

  it('copies a blob from the peer named, verified and linked, and links one already held without reading it', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 11);
    const blob = await sources[0]!.addBlob('team/src', bytes);
    expect(await fetchBlob('team/fetched', blob, 'eu-west')).toMatchObject({ written: true, received: String(bytes.length), sourceCode: grpc.status.OK });
    expect(sources[0]!.getBlobs.at(-1)).toEqual({ digest: blob.digest, offset: 0, bytes: bytes.length });
    expect((await getBlob(blob.digest, 0)).equals(bytes)).toBe(true);
    expect((await metadata.blobs.findInRepository('team/fetched', blob.digest)).found?.size).toBe(bytes.length);

    const reads = sources[0]!.getBlobs.length;
    expect(await fetchBlob('team/fetched-again', blob, 'eu-west')).toMatchObject({ written: false, received: '0', sourceCode: grpc.status.OK });
    expect(sources[0]!.getBlobs.length).toBe(reads);
    expect((await metadata.blobs.findInRepository('team/fetched-again', blob.digest)).found?.size).toBe(bytes.length);
  });

  it('reports a source that lacks the blob in the reply, starting no transfer', async () => {
    const bytes = randomBytes(100_000);
    const blob = { digest: sha256(bytes), size: bytes.length };
    const reply = await fetchBlob('team/fetched', blob, 'eu-west');
    expect(reply).toMatchObject({ written: false, received: '0', sourceCode: grpc.status.NOT_FOUND });
    expect(reply.sourceDetail).toMatch(/^eu-west: /);
    expect(await linkBlobs('team/fetched', [blob])).toEqual([{ digest: blob.digest, held: false, offset: '0' }]);
  });

  it('keeps what a source sent before it broke off, and the next source sends only the rest', async () => {
    const size = 4 * 1024 * 1024 + 123;
    const breakAt = 1024 * 1024;
    const bytes = randomBytes(size);
    const [whole, broken] = [sources[1]!, sources[2]!];
    const blob = await broken.addBlob('team/src', bytes);
    await whole.addBlob('team/src', bytes);
    broken.pauseGetBlobAt(breakAt);
    const fetching = fetchBlob('team/fetched', blob, 'ap-southeast');
    // The source goes down once the region holds what it sent.
    await until(async () => (await linkBlobs('team/fetched', [blob]))[0]!.offset === String(breakAt));
    await broken.close();
    const reply = await fetching;
    expect(reply).toMatchObject({ written: false, received: String(breakAt) });
    expect(reply.sourceCode).not.toBe(grpc.status.OK);

    expect(await fetchBlob('team/fetched', blob, 'us-east')).toMatchObject({ written: true, received: String(size - breakAt), sourceCode: grpc.status.OK });
    expect(whole.getBlobs).toEqual([{ digest: blob.digest, offset: breakAt, bytes: size - breakAt }]);
    expect((await getBlob(blob.digest, 0)).equals(bytes)).toBe(true);
  });

  it('answers UNIMPLEMENTED in a region without peers, for the caller to relay the bytes', async () => {
    const bytes = randomBytes(1000);
    await expect(
      new Promise((resolve, reject) => client.fetchBlob({ repository: 'team/app', digest: sha256(bytes), size: String(bytes.length), source: 'eu-west' }, (err, reply) => (err ? reject(err) : resolve(reply)))),
    ).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
  });
});

describe('replica server: blobs', () => {
  it('receives a blob in chunks, verifies it, links it, and sends it back from any offset', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const digest = sha256(bytes);
    expect(await linkBlobs('team/app', [{ digest, size: bytes.length }])).toEqual([{ digest, held: false, offset: '0' }]);
    expect(await putBlob('team/app', digest, bytes.length, 0, bytes)).toMatchObject({ written: true });
    expect(await linkBlobs('team/app', [{ digest, size: bytes.length }])).toEqual([{ digest, held: true, offset: '0' }]);
    expect((await getBlob(digest, 0)).equals(bytes)).toBe(true);
    expect((await getBlob(digest, 1_000_000)).equals(bytes.subarray(1_000_000))).toBe(true);
    expect((await getBlob(digest, bytes.length)).length).toBe(0);
    // Sent again: acknowledged, nothing written.
    expect(await putBlob('team/other', digest, bytes.length, 0, bytes)).toMatchObject({ written: false });
    expect((await metadata.blobs.findInRepository('team/other', digest)).found?.size).toBe(bytes.length);
  });

  it('keeps what a broken transfer delivered, reports the offset, and completes from there', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const digest = sha256(bytes);
    await expect(putBlob('team/app', digest, bytes.length, 0, bytes, 1_200_000)).rejects.toMatchObject({ code: grpc.status.ABORTED });
    const [holding] = await linkBlobs('team/app', [{ digest, size: bytes.length }]);
    expect(holding).toEqual({ digest, held: false, offset: '1200000' });
    // A sender that does not resume from the reported offset is refused, and nothing is lost.
    await expect(putBlob('team/app', digest, bytes.length, 0, bytes)).rejects.toMatchObject({ code: grpc.status.ABORTED });
    expect(await putBlob('team/app', digest, bytes.length, 1_200_000, bytes.subarray(1_200_000))).toMatchObject({ written: true });
    expect((await getBlob(digest, 0)).equals(bytes)).toBe(true);
  });

  it('sends a blob written directly and not read since around the page cache, as a first pull reads it', async () => {
    // Another gateway of the region, whose store writes large blobs with O_DIRECT as a gateway's does by default.
    const root = path.join(dataDir, 'store');
    const directServer = createReplicaServer({
      region: 'direct',
      replica: new ReplicaApplier(metadata, new BlobStore(STORAGE_DRIVERS.filesystem({ rootDirectory: root, directWrites: true })), new LookupCache({ maxEntries: 10 })),
      readiness: async () => ({ ready: true, detail: '' }),
      logger: pino({ level: 'silent' }),
      callers: new ServiceTokenVerifier(TEST_CLUSTER_SECRET, 'direct'),
    });
    const directClient = createEntitledReplicaClient(`127.0.0.1:${await directServer.listen('127.0.0.1', 0)}`, 'direct');
    try {
      const bytes = randomBytes(3 * 1024 * 1024 + 5);
      const digest = sha256(bytes);
      await new Promise((resolve, reject) => {
        const stream = directClient.putBlob((err, reply) => (err ? reject(err) : resolve(reply)));
        stream.write({ header: { repository: 'team/direct', digest, size: String(bytes.length), offset: '0' } });
        stream.end({ chunk: bytes });
      });
      // The store's mark of a file written directly and not read whole since (fs-writer.ts).
      const fresh = () => (statSync(blobPath(digest)).mode & 0o1000) !== 0;
      expect(fresh()).toBe(true);
      const received = await new Promise<Buffer>((resolve, reject) => {
        const parts: Buffer[] = [];
        const stream = directClient.getBlob({ digest, offset: '0' });
        stream.on('data', (chunk: { data: Buffer }) => parts.push(chunk.data));
        stream.on('error', reject);
        stream.on('end', () => resolve(Buffer.concat(parts)));
      });
      expect(received.equals(bytes)).toBe(true);
      expect(fresh()).toBe(false);
    } finally {
      directClient.close();
      await directServer.close(1000);
    }
  });

  it('FindBlobs says which blobs it holds, their sizes and whether the repository links them, and links nothing', async () => {
    const bytes = randomBytes(2048);
    const digest = sha256(bytes);
    const absent = sha256(randomBytes(16));
    await putBlob('find/linked', digest, bytes.length, 0, bytes);
    const find = (repository: string) => call(client.findBlobs, { repository, digests: [digest, absent] }).then((reply) => reply.blobs);
    expect(await find('find/linked')).toEqual([
      { digest, held: true, size: String(bytes.length), linked: true },
      { digest: absent, held: false, size: '0', linked: false },
    ]);
    expect(await find('find/other')).toEqual([
      { digest, held: true, size: String(bytes.length), linked: false },
      { digest: absent, held: false, size: '0', linked: false },
    ]);
    // Asking is not linking (LinkBlobs would have).
    expect((await metadata.blobs.findInRepository('find/other', digest)).found).toBeUndefined();
  });

  it('refuses bytes that do not hash to the digest and stores nothing', async () => {
    const bytes = randomBytes(300_000);
    const digest = sha256(randomBytes(300_000));
    await expect(putBlob('team/app', digest, bytes.length, 0, bytes)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect(await linkBlobs('team/app', [{ digest, size: bytes.length }])).toEqual([{ digest, held: false, offset: '0' }]);
    await expect(getBlob(digest, 0)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});

describe('replica server: manifests, tags and deletes', () => {
  it('applies a manifest only once its blobs are held, then serves it by tag with its clock', async () => {
    const image = buildImage();
    const write = { repository: 'rep/img', digest: image.digest, mediaType: image.mediaType, payload: image.manifestBytes, tag: 'v1', clock: clock(1000n << 16n, 'there') };
    await expect(call(client.applyManifest, write)).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    await sendImage('rep/img', image);
    expect(await call(client.applyManifest, write)).toMatchObject({ applied: true });
    const got = await call(client.getManifest, { repository: 'rep/img', reference: 'v1' });
    expect(got.digest).toBe(image.digest);
    expect(Buffer.from(got.payload).equals(Buffer.from(image.manifestBytes))).toBe(true);
    expect(got.tagClock).toEqual(clock(1000n << 16n, 'there'));
    // Applied writes came from elsewhere: they are not this region's to relay.
    expect(await metadata.outbox.oldest(100)).toEqual([]);
  });

  it('converges on the newest write of a tag whatever order the writes arrive in, ties broken by region name', async () => {
    const [a, b, c] = [buildImage(), buildImage(), buildImage()];
    for (const image of [a, b, c]) await sendImage('rep/lww', image);
    const apply = (image: TestImage, hlc: bigint, origin: string) =>
      call(client.applyManifest, { repository: 'rep/lww', digest: image.digest, mediaType: image.mediaType, payload: image.manifestBytes, tag: 'latest', clock: clock(hlc, origin) });
    await apply(b, 2000n, 'b-region');
    await apply(a, 1000n, 'z-region'); // older: the manifest is stored, the tag stays
    expect((await call(client.getManifest, { repository: 'rep/lww', reference: 'latest' })).digest).toBe(b.digest);
    await apply(c, 2000n, 'c-region'); // same clock, greater region name: wins
    expect((await call(client.getManifest, { repository: 'rep/lww', reference: 'latest' })).digest).toBe(c.digest);
    await apply(b, 2000n, 'b-region'); // the earlier winner again: loses the tie
    expect((await call(client.getManifest, { repository: 'rep/lww', reference: 'latest' })).digest).toBe(c.digest);
  });

  it('a tag delete wins over older writes, leaves a tombstone, and yields to newer ones', async () => {
    const image = buildImage();
    await sendImage('rep/del', image);
    const put = (hlc: bigint) =>
      call(client.applyManifest, { repository: 'rep/del', digest: image.digest, mediaType: image.mediaType, payload: image.manifestBytes, tag: 't', clock: clock(hlc, 'a') });
    const del = (hlc: bigint) => call(client.applyDelete, { kind: 'TAG', repository: 'rep/del', name: 't', clock: clock(hlc, 'b') });
    await put(100n);
    expect(await del(50n)).toMatchObject({ applied: false });
    expect(await del(200n)).toMatchObject({ applied: true });
    await put(150n); // older than the delete: the tombstone keeps it out
    await expect(call(client.getManifest, { repository: 'rep/del', reference: 't' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await put(300n);
    expect((await call(client.getManifest, { repository: 'rep/del', reference: 't' })).digest).toBe(image.digest);
  });

  // A replicated delete is decided by the clocks alone: its origin held no index listing the
  // manifest when it deleted, so refusing it here for an index from another region would leave
  // this region, and only it, holding the manifest (libs/metadata convergence.int.test.ts).
  it('deletes a manifest an index lists when the delete is newer, and takes an index whose child it knows deleted', async () => {
    const child = buildImage();
    await sendImage('rep/idx', child);
    await call(client.applyManifest, { repository: 'rep/idx', digest: child.digest, mediaType: child.mediaType, payload: child.manifestBytes, tag: 'child', clock: clock(10n, 'a') });
    const index = buildIndex([{ image: child, platform: { os: 'linux', architecture: 'amd64' } }]);
    await call(client.applyManifest, { repository: 'rep/idx', digest: index.digest, mediaType: MediaType.OciIndex, payload: index.bytes, clock: clock(18n, 'b') });
    expect(await call(client.applyDelete, { kind: 'MANIFEST', repository: 'rep/idx', name: child.digest, clock: clock(20n, 'a') })).toMatchObject({ applied: true });
    await expect(call(client.getManifest, { repository: 'rep/idx', reference: 'child' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect((await call(client.getManifest, { repository: 'rep/idx', reference: index.digest })).digest).toBe(index.digest);
    // Another index listing the deleted child, as a region that got it after the delete holds it.
    const other = buildIndex([{ image: child, platform: { os: 'linux', architecture: 'arm64' } }]);
    expect(
      await call(client.applyManifest, { repository: 'rep/idx', digest: other.digest, mediaType: MediaType.OciIndex, payload: other.bytes, clock: clock(19n, 'c') }),
    ).toMatchObject({ applied: true });
    // A put older than the delete does not bring it back.
    expect(
      await call(client.applyManifest, { repository: 'rep/idx', digest: child.digest, mediaType: child.mediaType, payload: child.manifestBytes, clock: clock(15n, 'a') }),
    ).toMatchObject({ applied: false });
  });

  it('refuses a manifest whose bytes are not its digest', async () => {
    const image = buildImage();
    await sendImage('rep/bad', image);
    await expect(
      call(client.applyManifest, { repository: 'rep/bad', digest: sha256('other'), mediaType: image.mediaType, payload: image.manifestBytes, clock: clock(1n, 'a') }),
    ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });
});

describe('local writes and the outbox', () => {
  it('a local tag write moves past a replicated write with a clock ahead of the wall clock, and is appended to the outbox', async () => {
    const [remote, mine] = [buildImage(), buildImage()];
    for (const image of [remote, mine]) await sendImage('rep/skew', image);
    const future = BigInt(Date.now() + 3_600_000) << 16n;
    await call(client.applyManifest, { repository: 'rep/skew', digest: remote.digest, mediaType: remote.mediaType, payload: remote.manifestBytes, tag: 'x', clock: clock(future, 'zz') });
    await local.put('rep/skew', 'x', mine.mediaType, Buffer.from(mine.manifestBytes));
    const got = await call(client.getManifest, { repository: 'rep/skew', reference: 'x' });
    expect(got.digest).toBe(mine.digest);
    expect(BigInt(got.tagClock!.hlc)).toBe(future + 1n);
    const outbox = await metadata.outbox.oldest(100);
    expect(outbox.map((entry) => entry.body)).toEqual([
      { kind: 'manifest.put', repository: 'rep/skew', digest: mine.digest, mediaType: mine.mediaType, size: mine.manifestBytes.length, tag: 'x' },
    ]);
    expect(outbox[0]!.hlc).toBe((future + 1n).toString());
    await metadata.outbox.remove(outbox.map((entry) => entry.seq));
  });
});

describe('replica server: inventory', () => {
  it('pages through manifests, tags and blob links in a stable order', async () => {
    const seen = { manifests: 0, tags: 0, blobs: 0 };
    let token = '';
    for (let pages = 0; pages < 100; pages++) {
      const page = await call(client.listInventory, { pageToken: token, pageSize: 2 });
      seen.manifests += page.manifests.length;
      seen.tags += page.tags.length;
      seen.blobs += page.blobs.length;
      token = page.nextPageToken;
      if (!token) break;
    }
    const counts = await pool.query<{ manifests: number; tags: number; blobs: number }>(
      'SELECT (SELECT count(*)::int FROM manifests) AS manifests, (SELECT count(*)::int FROM tags) AS tags, (SELECT count(*)::int FROM repository_blobs) AS blobs',
    );
    expect(seen).toEqual(counts.rows[0]);
    expect(seen.manifests).toBeGreaterThan(4);
  });

  it('the last page says how many of the region\'s own changes wait in its outbox, read after the pages', async () => {
    const lastPage = async () => {
      let page = await call(client.listInventory, { pageToken: '', pageSize: 1000 });
      while (page.nextPageToken) page = await call(client.listInventory, { pageToken: page.nextPageToken, pageSize: 1000 });
      return page;
    };
    expect(await metadata.outbox.backlog()).toBe(0);
    expect((await lastPage()).unrelayed).toBe('0');
    const image = buildImage();
    await sendImage('rep/relay', image);
    await local.put('rep/relay', 'v1', image.mediaType, Buffer.from(image.manifestBytes));
    const waiting = await metadata.outbox.oldest(100);
    expect(waiting.length).toBeGreaterThan(0);
    expect((await lastPage()).unrelayed).toBe(String(waiting.length));
    await metadata.outbox.remove(waiting.map((entry) => entry.seq));
    expect((await lastPage()).unrelayed).toBe('0');
  });

  it('with verify, reports a blob whose bytes no longer hash to its digest pending, serves it no more, and takes a transfer of it again', async () => {
    const bytes = randomBytes(700_000);
    const digest = sha256(bytes);
    await putBlob('team/verified', digest, bytes.length, 0, bytes);
    await writeFile(blobPath(digest), randomBytes(bytes.length));
    const stateOf = async () => (await inventoryBlobs(false)).find((b) => b.repository === 'team/verified')?.state;
    expect(await stateOf()).toBe('present');

    const verified = await inventoryBlobs(true);
    expect(verified.find((b) => b.repository === 'team/verified')).toMatchObject({ digest, state: 'pending' });
    // Every other blob of the region still hashes to its digest.
    expect(verified.filter((b) => b.state !== 'present').map((b) => b.digest)).toEqual([digest]);
    expect(await stateOf()).toBe('pending');
    await expect(getBlob(digest, 0)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });

    expect(await linkBlobs('team/verified', [{ digest, size: bytes.length }])).toEqual([{ digest, held: false, offset: '0' }]);
    expect(await putBlob('team/verified', digest, bytes.length, 0, bytes)).toMatchObject({ written: true });
    expect((await getBlob(digest, 0)).equals(bytes)).toBe(true);
    expect(await stateOf()).toBe('present');
  });

  it('a blob recorded pending is not held, whatever file is at its path, and a transfer replaces that file', async () => {
    const bytes = randomBytes(400_000);
    const digest = sha256(bytes);
    await putBlob('team/pending', digest, bytes.length, 0, bytes);
    await writeFile(blobPath(digest), randomBytes(bytes.length));
    await metadata.blobs.markPending([digest]);
    expect(await linkBlobs('team/pending', [{ digest, size: bytes.length }])).toEqual([{ digest, held: false, offset: '0' }]);
    expect(await putBlob('team/pending', digest, bytes.length, 0, bytes)).toMatchObject({ written: true });
    expect((await getBlob(digest, 0)).equals(bytes)).toBe(true);
    expect((await metadata.blobs.findInRepository('team/pending', digest)).found?.state).toBe('present');
  });

  it('answers health with the region name', async () => {
    expect(await call(client.health, {})).toEqual({ region: 'here', ready: true, detail: '' });
  });
});

// The replica protocol is authenticated (README, "Geo-replication", the replica protocol's
// authentication): a call without a valid service token for this region, or from a service not
// allowed the method, is refused before any handler runs. Real grpc-js clients, real server.
describe('replica server: service tokens', () => {
  const address = () => `127.0.0.1:${port}`;
  const asService = (service: 'replication-worker' | 'gateway' | 'control-plane', secret = TEST_CLUSTER_SECRET, region = 'here') =>
    new ReplicaDialer({ tokens: new ServiceTokenIssuer(secret, service) }).dial({ name: region, grpc: address() });
  const withClient = async <T>(other: ReplicaClient, work: (c: ReplicaClient) => Promise<T>): Promise<T> => {
    try {
      return await work(other);
    } finally {
      other.close();
    }
  };
  const unary = <Request, Reply>(c: ReplicaClient, method: (request: Request, callback: (err: grpc.ServiceError | null, reply?: Reply) => void) => unknown, request: Request) =>
    new Promise<Reply>((resolve, reject) => method.call(c, request, (err, reply) => (err ? reject(err) : resolve(reply!))));

  it('refuses a call without a token, with one from another cluster secret, and with one for another region', async () => {
    await withClient(createReplicaClient(address()), (c) => expect(unary(c, c.health, {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED }));
    await withClient(asService('control-plane', `${TEST_CLUSTER_SECRET} of another cluster`), (c) =>
      expect(unary(c, c.health, {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED }),
    );
    await withClient(asService('control-plane', TEST_CLUSTER_SECRET, 'elsewhere'), (c) =>
      expect(unary(c, c.health, {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED }),
    );
    // A token that is only the right shape is no better than none.
    const forged = new grpc.Metadata();
    forged.set('authorization', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJjb250cm9sLXBsYW5lIiwiYXVkIjoiaGVyZSJ9.');
    await withClient(createReplicaClient(address()), (c) =>
      expect(new Promise((resolve, reject) => c.health({}, forged, (err, reply) => (err ? reject(err) : resolve(reply))))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED }),
    );
    await withClient(asService('control-plane'), async (c) => expect(await unary(c, c.health, {})).toMatchObject({ region: 'here' }));
  });

  it('refuses a streamed PutBlob and GetBlob without a token, storing and sending nothing', async () => {
    const bytes = randomBytes(300_000);
    const digest = sha256(bytes);
    await withClient(createReplicaClient(address()), async (c) => {
      const put = new Promise((resolve, reject) => {
        const stream = c.putBlob((err, reply) => (err ? reject(err) : resolve(reply)));
        // The refusal may come while the bytes are still being sent.
        stream.on('error', () => undefined);
        stream.write({ header: { repository: 'auth/app', digest, size: String(bytes.length), offset: '0' } });
        stream.end({ chunk: bytes });
      });
      await expect(put).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      expect(await metadata.blobs.findInRepository('auth/app', digest)).not.toMatchObject({ found: expect.anything() });
      expect(existsSync(blobPath(digest))).toBe(false);
    });
    await putBlob('auth/app', digest, bytes.length, 0, bytes);
    await withClient(createReplicaClient(address()), async (c) => {
      const received: Buffer[] = [];
      const read = new Promise((resolve, reject) => {
        const stream = c.getBlob({ digest, offset: '0' });
        stream.on('data', (chunk: { data: Buffer }) => received.push(chunk.data));
        stream.on('error', reject);
        stream.on('end', resolve);
      });
      await expect(read).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      expect(received).toEqual([]);
    });
  });

  it('lets each service call only its own methods: a gateway cannot apply a manifest or purge, the worker cannot purge', async () => {
    const image = buildImage();
    const write = { repository: 'auth/denied', digest: image.digest, mediaType: image.mediaType, payload: image.manifestBytes, tag: 'v1', clock: clock(1000n << 16n, 'there'), blobsOnDemand: true };
    await withClient(asService('gateway'), async (c) => {
      await expect(unary(c, c.applyManifest, write)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
      await expect(unary(c, c.purge, { region: 'here', dryRun: true })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
      // What read-through needs, it may do.
      expect(await unary(c, c.findBlobs, { repository: 'auth/denied', digests: [image.config.digest] })).toMatchObject({ blobs: expect.any(Array) });
    });
    await withClient(asService('replication-worker'), (c) =>
      expect(unary(c, c.purge, { region: 'here', dryRun: true })).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED }),
    );
    await expect(call(client.getManifest, { repository: 'auth/denied', reference: 'v1' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});

describe('replica server: purge', () => {
  const countsOf = (counts: object | null) => Object.fromEntries(Object.entries(counts ?? {}).map(([name, value]) => [name, Number(value)]));

  it('refuses a purge meant for another region, and one while its outbox holds changes of its own, deleting nothing', async () => {
    await expect(call(client.purge, { region: 'elsewhere' })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('"elsewhere"') });
    const image = buildImage();
    await sendImage('rep/purge', image);
    await local.put('rep/purge', 'v1', image.mediaType, Buffer.from(image.manifestBytes));
    const unrelayed = await metadata.outbox.backlog();
    expect(unrelayed).toBeGreaterThan(0);
    const held = await metadata.purge.held();
    const dry = await call(client.purge, { region: 'here', dryRun: true });
    expect(dry).toMatchObject({ unrelayed: String(unrelayed), done: false });
    expect(countsOf(dry.counts)).toEqual({ ...held, discardedChanges: 0 });
    await expect(call(client.purge, { region: 'here' })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(/not stored/) });
    expect(await metadata.purge.held()).toEqual(held);
    expect(await metadata.outbox.backlog()).toBe(unrelayed);
  });

  it('with the outbox discarded, deletes everything a page at a time, bytes too, and answers done; a purged region answers done at once', async () => {
    const held = await metadata.purge.held();
    const unrelayed = await metadata.outbox.backlog();
    const digests = (await pool.query<{ digest: string }>('SELECT digest FROM blobs')).rows.map((row) => row.digest);
    expect(digests.length).toBeGreaterThan(3);
    const deleted: Record<string, number> = {};
    let steps = 0;
    for (let done = false; !done; steps++) {
      const step = await call(client.purge, { region: 'here', pageSize: 3, discardUnrelayed: true });
      for (const [name, value] of Object.entries(countsOf(step.counts))) {
        if (name !== 'bytes' && name !== 'discardedChanges') expect(value).toBeLessThanOrEqual(3);
        deleted[name] = (deleted[name] ?? 0) + value;
      }
      done = step.done;
    }
    expect(deleted).toEqual({ ...held, discardedChanges: unrelayed });
    expect(steps).toBeGreaterThan(held.blobs / 3);
    expect(await metadata.purge.held()).toEqual({ repositories: 0, manifests: 0, tags: 0, blobLinks: 0, blobs: 0, bytes: 0 });
    expect(await metadata.outbox.backlog()).toBe(0);
    for (const digest of digests) expect(existsSync(blobPath(digest))).toBe(false);
    const again = await call(client.purge, { region: 'here' });
    expect(again.done).toBe(true);
    expect(Object.values(countsOf(again.counts)).every((count) => count === 0)).toBe(true);
  });

  // A replication worker whose queue lock lapsed is no longer waited for by the control plane's
  // purge, and may still be applying a job here: its writes must not put content back.
  it('once a purge has begun, refuses every replicated write (UNAVAILABLE) and stores nothing, until the fence opens', async () => {
    const image = buildImage();
    const unavailable = { code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/being purged/) };
    await expect(putBlob('rep/late', image.config.digest, image.config.bytes.length, 0, image.config.bytes)).rejects.toMatchObject(unavailable);
    const write = { repository: 'rep/late', digest: image.digest, mediaType: image.mediaType, payload: image.manifestBytes, tag: 'v1', clock: clock(1000n << 16n, 'there'), blobsOnDemand: true };
    await expect(call(client.applyManifest, write)).rejects.toMatchObject(unavailable);
    await expect(call(client.applyDelete, { kind: 'TAG', repository: 'rep/late', name: 'v1', clock: clock(1001n << 16n, 'there') })).rejects.toMatchObject(unavailable);
    expect(await metadata.purge.anythingLeft()).toBe(false);
    expect(existsSync(blobPath(image.config.digest))).toBe(false);

    // What the outbox relay does once the control plane lists the region again (outbox-relay.int.test.ts).
    expect(await metadata.fence.open((await metadata.fence.closedSince())!)).toBe(true);
    expect(await call(client.applyDelete, { kind: 'TAG', repository: 'rep/late', name: 'v1', clock: clock(1001n << 16n, 'there') })).toMatchObject({ applied: false });
  });
});

// Last: the pending blobs it leaves would show in the inventory tests above.
describe('replica server: edge regions', () => {
  it('an edge region applies a manifest with blobsOnDemand before holding its blobs, which it records pending', async () => {
    const image = buildImage();
    const write = { repository: 'rep/edge', digest: image.digest, mediaType: image.mediaType, payload: image.manifestBytes, tag: 'v1', clock: clock(1000n << 16n, 'there'), blobsOnDemand: true };
    expect(await call(client.applyManifest, write)).toMatchObject({ applied: true });
    expect((await call(client.getManifest, { repository: 'rep/edge', reference: 'v1' })).digest).toBe(image.digest);
    for (const blob of [image.config, ...image.layers]) {
      expect(await metadata.blobs.findInRepository('rep/edge', blob.digest)).toMatchObject({ found: { size: blob.bytes.length, state: 'pending' } });
    }
  });
});

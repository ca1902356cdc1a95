import { describe, expect, it } from 'vitest';
import { MediaType } from '@meridian/oci';
import { grpc } from '@meridian/proto';
import { buildImage, buildIndex, until } from '@meridian/testkit';
import { replicationTests, startRegions } from '../testing/replication-test.js';

// The `replicate` job end to end: a worker on the real Redis, real gRPC servers for the regions
// (libs/testkit's in-memory Replica region), a stub for the control plane's two endpoints.
// The behaviour checked is replica.proto's contract and the worker's job as the README states it.

const REPO = 'team/app';
const start = replicationTests();

describe('replicate: manifests', () => {
  it('copies the blobs of a manifest.put from the origin, then applies the manifest and its tag', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const image = buildImage({ layers: 2, layerSize: 300_000 });
    await origin!.addImage(REPO, image, { tag: 'v1' });

    const change = t.change('eu', { kind: 'manifest.put', repository: REPO, digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length, tag: 'v1' });
    const report = await t.replicate(change, 'us');

    const blobs = [image.config, ...image.layers];
    expect(report).toMatchObject({ outcome: 'done', bytes: blobs.reduce((sum, b) => sum + b.bytes.length, 0), attempts: 1 });
    for (const blob of blobs) {
      expect(target!.hasBlob(REPO, blob.digest)).toBe(true);
      expect(await target!.storedDigest(blob.digest)).toBe(blob.digest);
    }
    expect(target!.manifest(REPO, image.digest)?.clock).toEqual({ hlc: BigInt(change.hlc), origin: 'eu' });
    expect(target!.tag(REPO, 'v1')).toBe(image.digest);
    expect(origin!.getBlobs.map((g) => g.digest).sort()).toEqual(blobs.map((b) => b.digest).sort());
  });

  it('to an edge region (a cache size on its record): no blob is copied, the manifest is applied with its blobs on demand, and a blob link is done at once', async () => {
    const [origin, edge] = await startRegions('eu', 'edge');
    const t = await start([{ fake: origin! }, { fake: edge!, cacheBytes: 1024 * 1024 }]);
    const image = buildImage({ layers: 2, layerSize: 300_000 });
    await origin!.addImage(REPO, image, { tag: 'v1' });

    const put = t.change('eu', { kind: 'manifest.put', repository: REPO, digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length, tag: 'v1' });
    expect(await t.replicate(put, 'edge')).toMatchObject({ outcome: 'done', bytes: 0 });
    expect(edge!.tag(REPO, 'v1')).toBe(image.digest);
    const layer = image.layers[0]!;
    const link = t.change('eu', { kind: 'blob.link', repository: REPO, digest: layer.digest, size: layer.bytes.length });
    expect(await t.replicate(link, 'edge')).toMatchObject({ outcome: 'done', bytes: 0 });
    expect(edge!.putBlobs).toEqual([]);
    expect(origin!.getBlobs).toEqual([]);
  });

  it('replicates the children of an index first (image-spec image-index.md), with their blobs and their own clocks', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const amd64 = buildImage();
    const arm64 = buildImage();
    const index = buildIndex([
      { image: amd64, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm64, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    await origin!.addImage(REPO, amd64, { clock: { hlc: 10n, origin: 'eu' } });
    await origin!.addImage(REPO, arm64, { clock: { hlc: 11n, origin: 'eu' } });
    origin!.addManifest(REPO, index.bytes, { mediaType: index.mediaType, tag: 'multi', clock: { hlc: 12n, origin: 'eu' } });

    const change = { ...t.change('eu', { kind: 'manifest.put', repository: REPO, digest: index.digest, mediaType: index.mediaType, size: index.bytes.length, tag: 'multi' }), hlc: '12' };
    expect(await t.replicate(change, 'us')).toMatchObject({ outcome: 'done' });

    expect(target!.tag(REPO, 'multi')).toBe(index.digest);
    expect(target!.manifest(REPO, amd64.digest)?.clock).toEqual({ hlc: 10n, origin: 'eu' });
    expect(target!.manifest(REPO, arm64.digest)?.clock).toEqual({ hlc: 11n, origin: 'eu' });
    for (const blob of [amd64.config, ...amd64.layers, arm64.config, ...arm64.layers]) expect(target!.hasBlob(REPO, blob.digest)).toBe(true);
  });

  it('replicates an artifact whose subject is in no region (distribution-spec v1.1 "Pushing Manifests with Subject")', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const absent = buildImage();
    const signature = buildImage({
      configMediaType: MediaType.OciEmpty,
      artifactType: 'application/vnd.example.signature',
      layers: 1,
      subject: { mediaType: absent.mediaType, digest: absent.digest, size: absent.manifestBytes.length },
    });
    await origin!.addImage(REPO, signature);

    const change = t.change('eu', { kind: 'manifest.put', repository: REPO, digest: signature.digest, mediaType: signature.mediaType, size: signature.manifestBytes.length });
    expect(await t.replicate(change, 'us')).toMatchObject({ outcome: 'done' });
    expect(target!.manifest(REPO, signature.digest)).toBeDefined();
    expect(target!.manifest(REPO, absent.digest)).toBeUndefined();
  });

  it('reports superseded when no region has the manifest any more (deleted since)', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const image = buildImage();
    const change = t.change('eu', { kind: 'manifest.put', repository: REPO, digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length });
    expect(await t.replicate(change, 'us')).toMatchObject({ outcome: 'superseded' });
    expect(target!.calls.ApplyManifest).toBe(0);
  });
});

describe('replicate: deletes', () => {
  it('applies tag.delete, manifest.delete and blob.unlink with the change clock', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const image = buildImage();
    await target!.addImage(REPO, image, { tag: 'v1', clock: { hlc: 1n, origin: 'eu' } });

    expect(await t.replicate(t.change('eu', { kind: 'tag.delete', repository: REPO, tag: 'v1' }), 'us')).toMatchObject({ outcome: 'done' });
    expect(target!.tag(REPO, 'v1')).toBeUndefined();
    expect(target!.manifest(REPO, image.digest)).toBeDefined();

    expect(await t.replicate(t.change('eu', { kind: 'manifest.delete', repository: REPO, digest: image.digest }), 'us')).toMatchObject({ outcome: 'done' });
    expect(target!.manifest(REPO, image.digest)).toBeUndefined();

    const layer = image.layers[0]!.digest;
    expect(await t.replicate(t.change('eu', { kind: 'blob.unlink', repository: REPO, digest: layer }), 'us')).toMatchObject({ outcome: 'done' });
    expect(target!.hasBlob(REPO, layer)).toBe(false);
    expect(target!.calls.ApplyDelete).toBe(3);
  });

  // FAILED_PRECONDITION: apply later. A manifest an index lists is deleted all the same (the
  // clocks decide, in every region).
  it('retries a manifest.delete refused with FAILED_PRECONDITION until it applies, an index listing the manifest or not', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const image = buildImage();
    const index = buildIndex([{ image, platform: { os: 'linux', architecture: 'amd64' } }]);
    await target!.addImage(REPO, image);
    target!.addManifest(REPO, index.bytes, { mediaType: index.mediaType });
    target!.failNext('ApplyDelete', grpc.status.FAILED_PRECONDITION, 1, 'apply later');

    const report = await t.replicate(t.change('eu', { kind: 'manifest.delete', repository: REPO, digest: image.digest }), 'us');
    expect(report.outcome).toBe('done');
    expect(report.attempts).toBe(2);
    expect(target!.manifest(REPO, image.digest)).toBeUndefined();
    expect(target!.manifest(REPO, index.digest)).toBeDefined();
  });

  it('reports a non-retryable error (INVALID_ARGUMENT) as failed after one attempt', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    target!.failNext('ApplyDelete', grpc.status.INVALID_ARGUMENT, 5, 'bad name');

    const report = await t.replicate(t.change('eu', { kind: 'tag.delete', repository: REPO, tag: 'v1' }), 'us');
    expect(report).toMatchObject({ outcome: 'failed', attempts: 1 });
    expect(report.error).toMatch(/INVALID_ARGUMENT: bad name/);
    expect(target!.calls.ApplyDelete).toBe(1);
  });

  it('reports a retryable error as failed, with the last error, once the attempts are used up', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    target!.failNext('ApplyDelete', grpc.status.UNAVAILABLE, 10, 'region busy');

    const report = await t.replicate(t.change('eu', { kind: 'tag.delete', repository: REPO, tag: 'v1' }), 'us', { attempts: 3 });
    expect(report).toMatchObject({ outcome: 'failed', attempts: 3 });
    expect(report.error).toMatch(/UNAVAILABLE: region busy/);
    expect(target!.calls.ApplyDelete).toBe(3);
  });

  it('keeps a final failure until the control plane records it', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    target!.failNext('ApplyDelete', grpc.status.INVALID_ARGUMENT, 5);
    t.controlPlane.refuseReports(1);

    const report = await t.replicate(t.change('eu', { kind: 'tag.delete', repository: REPO, tag: 'v1' }), 'us');
    expect(report).toMatchObject({ outcome: 'failed', attempts: 1 });
  });
});

describe('replicate: the control plane away', () => {
  it('waits for it without spending an attempt when the outcome cannot be reported', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    t.controlPlane.refuseReports(1);

    const report = await t.replicate(t.change('eu', { kind: 'tag.delete', repository: REPO, tag: 'v1' }), 'us', { attempts: 1 });
    expect(report).toMatchObject({ outcome: 'done', attempts: 1 });
    expect(target!.calls.ApplyDelete).toBe(2);
  });
});

describe('replicate: targets and sources', () => {
  it('drops a job whose target is draining, without calling it', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target!, state: 'draining' }]);
    const report = await t.replicate(t.change('eu', { kind: 'tag.delete', repository: REPO, tag: 'v1' }), 'us');
    expect(report).toMatchObject({ outcome: 'dropped' });
    expect(Object.values(target!.calls).every((count) => count === 0)).toBe(true);
  });

  it('copies from the region nearest the target that holds the content when the origin is down', async () => {
    // Frankfurt is the origin; Virginia the target; Montreal is near it, Sydney far.
    const [origin, target, near, far] = await startRegions('fra', 'iad', 'yul', 'syd');
    const t = await start([
      { fake: origin!, lat: 50.1, lon: 8.7 },
      { fake: target!, lat: 38.9, lon: -77.4 },
      { fake: near!, lat: 45.5, lon: -73.6 },
      { fake: far!, lat: -33.9, lon: 151.2 },
    ]);
    const image = buildImage();
    for (const region of [origin!, near!, far!]) await region.addImage(REPO, image, { tag: 'v1' });
    await origin!.close();

    const change = t.change('fra', { kind: 'manifest.put', repository: REPO, digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length, tag: 'v1' });
    expect(await t.replicate(change, 'iad')).toMatchObject({ outcome: 'done', attempts: 1 });
    expect(target!.tag(REPO, 'v1')).toBe(image.digest);
    expect(near!.getBlobs).toHaveLength(3);
    expect(far!.calls.GetBlob + far!.calls.GetManifest).toBe(0);
  });

  it('runs at most MERIDIAN_REGION_CONCURRENCY jobs against one target at once', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }], { MERIDIAN_WORKER_CONCURRENCY: '8', MERIDIAN_REGION_CONCURRENCY: '2' });
    const blobs = await Promise.all(Array.from({ length: 10 }, (_, i) => target!.addBlob('other', Buffer.from(`blob ${i}`))));
    const release = target!.hold('LinkBlobs');

    const changeIds = await Promise.all(blobs.map((b) => t.enqueue(t.change('eu', { kind: 'blob.link', repository: REPO, ...b }), 'us')));
    // Every job the worker can take at once (8) is either in a call to the target or waiting for a slot.
    await until(() => target!.inFlight + t.worker.limiter.waiting('us') === 8);
    expect(target!.inFlight).toBe(2);
    release();

    for (const id of changeIds) expect(await t.controlPlane.report(id, 'us')).toMatchObject({ outcome: 'done', bytes: 0 });
    expect(target!.maxInFlight).toBe(2);
    for (const b of blobs) expect(target!.hasBlob(REPO, b.digest)).toBe(true);
  });
});

import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { until } from '@meridian/testkit';
import { replicationTests, startRegions } from './testing/replication-test.js';

// Blob copies between regions through a real worker (Redis, gRPC): bounded memory whatever the
// blob's size, and resuming from the offset LinkBlobs reports (replica.proto, LinkBlobs and PutBlob).

const REPO = 'team/big';
const MiB = 1024 * 1024;
const start = replicationTests();

/** V8's full collection, which vitest's workers do not expose as a global. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** `size` random bytes, made 1 MiB at a time: never whole in memory. */
async function* randomContent(size: number): AsyncGenerator<Uint8Array> {
  for (let made = 0; made < size; made += MiB) yield randomBytes(Math.min(MiB, size - made));
}

describe('blob copy', () => {
  it('copies a 256 MiB blob between two regions in bounded memory', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const blob = await origin!.addBlob(REPO, randomContent(256 * MiB));
    // A target slower than its source (10 ms per chunk stored): a sender that did not wait for
    // it would pile most of the blob up in memory (190 MiB when the pause on write() is removed).
    target!.slowWrites(10);

    // The worker, both regions and this test share the process. Sampled after a full collection,
    // heap and off-heap buffers (gRPC messages, file chunks) are what the copy holds, not garbage
    // that happens to be waiting for the collector.
    const gc = collector();
    const live = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    const baseline = live();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, live())), 250);
    try {
      const report = await t.replicate(t.change('eu', { kind: 'blob.link', repository: REPO, ...blob }), 'us');
      expect(report).toMatchObject({ outcome: 'done', bytes: 256 * MiB });
    } finally {
      clearInterval(sampler);
    }
    expect(await target!.storedDigest(blob.digest)).toBe(blob.digest);
    const growth = peak - baseline;
    process.stdout.write(`256 MiB copy: live heap+external grew by at most ${(growth / MiB).toFixed(1)} MiB\n`);
    expect(growth).toBeLessThan(80 * MiB);
  }, 180_000);

  it('resumes a copy whose target stream broke mid-blob: only the rest is sent', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const size = 8 * MiB + 123;
    const breakAt = 3 * MiB + 7;
    const blob = await origin!.addBlob(REPO, randomContent(size));
    target!.breakNextPutBlobAt(breakAt);

    const report = await t.replicate(t.change('eu', { kind: 'blob.link', repository: REPO, ...blob }), 'us');
    expect(report).toMatchObject({ outcome: 'done', attempts: 2, bytes: size - breakAt });
    expect(target!.putBlobs).toEqual([
      { digest: blob.digest, offset: 0, bytes: breakAt },
      { digest: blob.digest, offset: breakAt, bytes: size - breakAt },
    ]);
    expect(origin!.getBlobs.at(-1)).toEqual({ digest: blob.digest, offset: breakAt, bytes: size - breakAt });
    expect(await target!.storedDigest(blob.digest)).toBe(blob.digest);
  });

  it('hands a copy back to the queue when the worker stops mid-blob, and the next worker resumes it', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }], { MERIDIAN_SHUTDOWN_GRACE_SECONDS: '0' });
    const size = 16 * MiB;
    const stopAt = 5 * MiB + 11;
    const blob = await origin!.addBlob(REPO, randomContent(size));
    const release = origin!.pauseGetBlobAt(stopAt);

    const changeId = await t.enqueue(t.change('eu', { kind: 'blob.link', repository: REPO, ...blob }), 'us');
    await until(() => target!.partialOffset(blob.digest) === stopAt);
    await t.restartWorker();
    release();

    // Handed back, not failed: the attempt was not spent.
    expect(await t.controlPlane.report(changeId, 'us')).toMatchObject({ outcome: 'done', attempts: 1, bytes: size - stopAt });
    expect(target!.putBlobs.map(({ offset, bytes }) => ({ offset, bytes }))).toEqual([
      { offset: 0, bytes: stopAt },
      { offset: stopAt, bytes: size - stopAt },
    ]);
    expect(await target!.storedDigest(blob.digest)).toBe(blob.digest);
  });

  it('lets a job that needs a blob another job is sending to the same target wait for that copy', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }]);
    const blob = await origin!.addBlob(REPO, randomContent(4 * MiB));
    const release = origin!.pauseGetBlobAt(MiB);

    const first = await t.enqueue(t.change('eu', { kind: 'blob.link', repository: REPO, ...blob }), 'us');
    await until(() => target!.partialOffset(blob.digest) === MiB);
    const second = await t.enqueue(t.change('eu', { kind: 'blob.link', repository: 'team/other', ...blob }), 'us');
    await until(() => target!.calls.LinkBlobs === 2);
    release();

    expect(await t.controlPlane.report(first, 'us')).toMatchObject({ outcome: 'done', attempts: 1, bytes: blob.size });
    // No second transfer, so none refused for colliding with the first, and no attempt spent.
    expect(await t.controlPlane.report(second, 'us')).toMatchObject({ outcome: 'done', attempts: 1, bytes: 0 });
    expect(target!.putBlobs).toHaveLength(1);
    expect(target!.hasBlob('team/other', blob.digest)).toBe(true);
  });

  it('reads a blob from its source once for the jobs copying it to two regions, a job that comes late reading only what it missed on its own', async () => {
    const [origin, us, ap] = await startRegions('eu', 'us', 'ap');
    const t = await start([{ fake: origin! }, { fake: us! }, { fake: ap! }]);
    const size = 16 * MiB + 5;
    const blob = await origin!.addBlob(REPO, randomContent(size));
    const release = origin!.pauseGetBlobAt(3 * MiB);
    const change = t.change('eu', { kind: 'blob.link', repository: REPO, ...blob });

    const toUs = await t.enqueue(change, 'us');
    await until(() => us!.partialOffset(blob.digest) === 3 * MiB);
    // The read for us stands at 3 MiB: the copy to ap joins it, and first reads the 3 MiB it missed.
    const toAp = await t.enqueue(change, 'ap');
    await until(() => ap!.partialOffset(blob.digest) === 3 * MiB);
    release();

    expect(await t.controlPlane.report(toUs, 'us')).toMatchObject({ outcome: 'done', attempts: 1, bytes: size });
    expect(await t.controlPlane.report(toAp, 'ap')).toMatchObject({ outcome: 'done', attempts: 1, bytes: size });
    expect(await us!.storedDigest(blob.digest)).toBe(blob.digest);
    expect(await ap!.storedDigest(blob.digest)).toBe(blob.digest);
    // One read of the whole blob, and one of the first 3 MiB: not two of the whole.
    expect(origin!.getBlobs).toEqual([
      { digest: blob.digest, offset: 0, bytes: size },
      { digest: blob.digest, offset: 0, bytes: 3 * MiB },
    ]);
  });

  it('keeps a shared read going for one region when the copy to the other breaks, and that copy resumes', async () => {
    const [origin, us, ap] = await startRegions('eu', 'us', 'ap');
    const t = await start([{ fake: origin! }, { fake: us! }, { fake: ap! }]);
    const size = 8 * MiB + 3;
    const blob = await origin!.addBlob(REPO, randomContent(size));
    const release = origin!.hold('GetBlob');
    ap!.breakNextPutBlobAt(2 * MiB + 1);
    const change = t.change('eu', { kind: 'blob.link', repository: REPO, ...blob });

    // Both copies wait on the first read, held before its first byte: they share it from the start.
    // The hold ends only once both have joined: the copy to ap joins after its LinkBlobs and its
    // FetchBlob have been answered, and a read released before that may already have moved on,
    // when ap rightly reads what it missed from 0 with a GetBlob of its own (the test above).
    const toUs = await t.enqueue(change, 'us');
    await until(() => origin!.calls.GetBlob === 1);
    const toAp = await t.enqueue(change, 'ap');
    await until(() => t.worker.reads.copies === 2);
    release();

    expect(await t.controlPlane.report(toUs, 'us')).toMatchObject({ outcome: 'done', attempts: 1, bytes: size });
    expect(await t.controlPlane.report(toAp, 'ap')).toMatchObject({ outcome: 'done' });
    expect(await us!.storedDigest(blob.digest)).toBe(blob.digest);
    expect(await ap!.storedDigest(blob.digest)).toBe(blob.digest);
    expect(us!.putBlobs).toEqual([{ digest: blob.digest, offset: 0, bytes: size }]);
    expect(ap!.putBlobs.map(({ offset }) => offset)).toEqual([0, 2 * MiB + 1]);
    // One read from the start served both; the broken copy resumed from where ap stopped.
    expect(origin!.getBlobs.filter(({ offset }) => offset === 0)).toEqual([{ digest: blob.digest, offset: 0, bytes: size }]);
  });

  it('moves to another source when one answers DATA_LOSS, and starts over when the kept bytes do not hash', async () => {
    const [origin, target, other] = await startRegions('eu', 'us', 'ca');
    const t = await start([{ fake: origin! }, { fake: target! }, { fake: other! }]);
    const content = randomBytes(2 * MiB + 5);
    const blob = await origin!.addBlob(REPO, content);
    await other!.addBlob(REPO, content);
    await origin!.corruptBlob(blob.digest);

    const report = await t.replicate(t.change('eu', { kind: 'blob.link', repository: REPO, ...blob }), 'us');
    // Done, with the bytes of the good source. Usually in one attempt; on a loaded machine the
    // corrupt source's stream can end after the target has refused it, and one retry follows.
    expect(report).toMatchObject({ outcome: 'done' });
    expect((report as { attempts: number }).attempts).toBeLessThanOrEqual(2);
    expect(other!.getBlobs.at(-1)).toMatchObject({ offset: 0, bytes: blob.size });
    expect(await target!.storedDigest(blob.digest)).toBe(blob.digest);
  });
});

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { until } from '@meridian/testkit';
import { replicationTests, startRegions } from './testing/replication-test.js';

// Several worker processes replicating one change set (README, "The replication worker in
// detail"): two workers on one Redis, each with one job at a time, so that two jobs needing the
// same blob in the same region run in different workers and meet at the target, which lets one
// PutBlob at a time write a blob (replica.proto, "Errors": ABORTED to the other).

const start = replicationTests();
const MiB = 1024 * 1024;

describe('two workers sending one blob to one region', () => {
  it('the second waits for the first transfer and takes its result: both done, no attempt spent, no error', async () => {
    const [origin, target] = await startRegions('eu', 'us');
    const t = await start([{ fake: origin! }, { fake: target! }], { MERIDIAN_WORKER_CONCURRENCY: '1' });
    await t.addWorker();
    const blob = await origin!.addBlob('team/app', randomBytes(4 * MiB));

    // The first job's copy stops half-way, its PutBlob open on the target.
    const release = origin!.pauseGetBlobAt(2 * MiB);
    const first = await t.enqueue(t.change('eu', { kind: 'blob.link', repository: 'team/app', ...blob }), 'us');
    await until(() => target!.putBlobs[0]?.bytes === 2 * MiB);
    // The same blob linked into another repository: the other worker's job, refused by the target.
    const second = await t.enqueue(t.change('eu', { kind: 'blob.link', repository: 'team/other', ...blob }), 'us');
    await until(() => target!.calls.PutBlob >= 2);
    release();

    const reports = await Promise.all([t.controlPlane.report(first, 'us'), t.controlPlane.report(second, 'us')]);
    expect(reports).toEqual([
      expect.objectContaining({ outcome: 'done', bytes: blob.size, attempts: 1 }),
      expect.objectContaining({ outcome: 'done', bytes: 0, attempts: 1 }),
    ]);
    expect(reports.every((report) => report.error === undefined)).toBe(true);
    expect(target!.hasBlob('team/app', blob.digest)).toBe(true);
    expect(target!.hasBlob('team/other', blob.digest)).toBe(true);
    expect(await target!.storedDigest(blob.digest)).toBe(blob.digest);
  });
});

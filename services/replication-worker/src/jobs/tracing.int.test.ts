import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, type Tracing } from '@meridian/telemetry';
import { tracedHandlers } from '@meridian/telemetry/grpc';
import { buildImage, startOtlpReceiver, type OtlpReceiver } from '@meridian/testkit';
import { FakeReplicaRegion } from '@meridian/testkit/fake-replica-region';
import { replicateJobId, type ReplicatedChange } from '@meridian/proto';
import { replicationTests } from '../testing/replication-test.js';

/**
 * A push is traced whole or not at all (README, "Traces"): a `replicate` job continues the trace
 * its change carries, and one whose change is not traced makes no span, neither in the worker nor
 * in the regions it calls. The worker on the real Redis, both regions real gRPC servers whose
 * handlers make their spans as a region's replica server does (tracedHandlers), the SDK started in
 * this process and exporting over OTLP/HTTP (JSON) to a receiver this test runs.
 */
let receiver: OtlpReceiver;
let tracing: Tracing | undefined;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  // No HTTP server spans here: the receiver and the control-plane stub are servers of this process too.
  tracing = await startTracing({ service: 'replication-worker', endpoint: receiver.url, httpServerSpans: false, express: false });
});

afterAll(async () => {
  await tracing?.shutdown();
  await receiver?.close();
});

const start = replicationTests();
const REPO = 'team/app';
const SAMPLED = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };

describe('replicate: tracing', () => {
  it('makes no span anywhere for a change whose push was not traced, and one whole trace for a change whose push was', async () => {
    const serve = (name: string) => FakeReplicaRegion.start(name, (handlers) => tracedHandlers(handlers, 'replica', { 'meridian.region': name }));
    const [origin, target] = await Promise.all([serve('eu'), serve('us')]);
    const t = await start([{ fake: origin }, { fake: target }]);
    // A manifest pushed to the origin, to replicate: a new one for each change.
    const pushed = async (tag: string) => {
      const image = buildImage({ layers: 1 });
      await origin.addImage(REPO, image, { tag });
      return t.change('eu', { kind: 'manifest.put', repository: REPO, digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length, tag });
    };

    // A change with no trace (its push untraced, or tracing off at its origin), then one whose
    // push decided, and said, not to trace it.
    // Each job to its end: its span ends once its report is answered.
    const replicated = async (change: ReplicatedChange) => {
      const changeId = await t.enqueue(change, 'us', { removeOnComplete: false });
      const report = await t.controlPlane.report(changeId, 'us');
      while ((await t.queue.getJobState(replicateJobId(changeId, 'us'))) !== 'completed') await new Promise((resolve) => setTimeout(resolve, 5));
      return report;
    };
    const untraced = await replicated(await pushed('v1'));
    const unsampled = await replicated({ ...(await pushed('v2')), trace: { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00` } });
    const sampled = await replicated({ ...(await pushed('v3')), trace: { traceparent: `00-${SAMPLED.traceId}-${SAMPLED.spanId}-01` } });
    expect([untraced, unsampled, sampled].map((report) => report.outcome)).toEqual(['done', 'done', 'done']);
    expect(origin.calls.GetManifest).toBe(3);
    expect(target.calls.ApplyManifest).toBe(3);
    // Stopped, the SDK exports every span it still holds.
    await tracing!.shutdown();
    tracing = undefined;

    // Nothing but the sampled change's trace: before, each untraced job's calls made a trace of
    // their own in each region called (a server span with no parent was recorded).
    expect(receiver.spans.filter((span) => span.traceId !== SAMPLED.traceId).map((span) => span.name)).toEqual([]);
    const trace = receiver.spans;
    const job = trace.find((span) => span.name === 'replication.job');
    expect(job).toMatchObject({ parentSpanId: SAMPLED.spanId, attributes: { 'meridian.target_region': 'us' } });
    // Each region's server spans are children of the job: the calls to the origin (the manifest
    // and its blobs) and to the target (the blobs and the manifest applied).
    const served = trace.filter((span) => span.name.startsWith('replica/'));
    expect(served.filter((span) => span.parentSpanId !== job!.spanId).map((span) => span.name)).toEqual([]);
    const names = served.map((span) => `${span.attributes['meridian.region']} ${span.name}`);
    expect(names).toEqual(expect.arrayContaining(['eu replica/GetManifest', 'eu replica/GetBlob', 'us replica/PutBlob', 'us replica/ApplyManifest']));

    // The reports to the control plane say so too: not traced for the untraced changes (so its
    // HTTP server starts no trace for them), the job's span for the sampled one.
    expect([untraced, unsampled].map((report) => report.traceparent)).toEqual([expect.stringMatching(/^00-[\da-f]{32}-[\da-f]{16}-00$/), expect.stringMatching(/^00-[\da-f]{32}-[\da-f]{16}-00$/)]);
    expect(sampled.traceparent).toBe(`00-${SAMPLED.traceId}-${job!.spanId}-01`);
  });
});

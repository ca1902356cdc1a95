/**
 * One trace per push, across the cluster (README, "Observability"): a cluster of three regions
 * (`pnpm cluster up`'s Cluster) exporting spans over OTLP/HTTP (JSON) to a receiver this test
 * runs. A manifest pushed to one region (distribution-spec v1.1 "Pushing manifests") must
 * show, in ONE trace, the push, the replication job for each other region, and each of those
 * regions applying it through the replica protocol: the trace context travels in the outbox
 * row, the change at the control plane, the job's data and the gRPC call's metadata. A push that
 * is not traced makes no span in any process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciTestClient, buildImage, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '@meridian/testkit';
import { Cluster, type ClusterState } from '../deploy/cluster/cluster.js';

const POSTGRES = process.env.MERIDIAN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TRACE_BOUND_MS = 60_000;

let home: string;
let cluster: Cluster;
let state: ClusterState;
let receiver: OtlpReceiver;
const run = randomBytes(4).toString('hex');
const databasePrefix = `meridian_e2e_traces_${run}`;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  home = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-traces-'));
  cluster = new Cluster({
    home,
    // Pushes and pulls without credentials; identity-cluster.e2e.test.ts runs a cluster with auth on.
    auth: false,
    postgresUrl: POSTGRES.replace(/\/[^/]*$/, ''),
    databasePrefix,
    queuePrefix: `meridian-e2e-traces-${run}`,
    logLevel: 'info',
    // OpenTelemetry's own variables: where to export, and export batches every 200 ms.
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '200' },
  });
  state = await cluster.up(3);
}, 240_000);

afterAll(async () => {
  await cluster?.down();
  const admin = new pg.Client({ connectionString: POSTGRES });
  await admin.connect();
  const names = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${databasePrefix}%`]);
  for (const { datname } of names.rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  await admin.end();
  await receiver?.close();
  if (home) await rm(home, { recursive: true, force: true });
}, 120_000);

/**
 * Pushes an image to the origin region as `repository:tag` (its blobs through `blobClient` when
 * given) and waits for the manifest push's trace to hold the push, the control plane planning
 * it, and for each other region its replication job and the region applying it; returns that
 * trace.
 */
async function pushTraced(repository: string, tag: string, blobClient?: OciTestClient): Promise<ReceivedSpan[]> {
  const [origin, ...targets] = state.regions;
  const client = new OciTestClient(origin!.http);
  const image = buildImage({ layers: 1 });
  for (const blob of [image.config, ...image.layers]) await (blobClient ?? client).pushBlob(repository, blob.bytes);
  const pushed = await client.pushManifest(repository, tag, image.manifestBytes, image.mediaType);
  expect(pushed.status).toBe(201);

  // The push's trace: the one holding the origin's manifest validation for this repository.
  const deadline = Date.now() + TRACE_BOUND_MS;
  const pushSpan = () =>
    receiver.spans.find((span) => span.name === 'manifest.validate' && span.attributes['meridian.repository'] === repository && span.resource['meridian.region'] === origin!.name);
  const traceOf = (push: ReceivedSpan) => receiver.spans.filter((span) => span.traceId === push.traceId);
  const complete = () => {
    const push = pushSpan();
    if (!push) return false;
    const trace = traceOf(push);
    return (
      trace.some((span) => span.name === 'replication.plan') &&
      targets.every(
        (target) =>
          trace.some((span) => span.name === 'replication.job' && span.attributes['meridian.target_region'] === target.name) &&
          trace.some((span) => span.name === 'replica/ApplyManifest' && span.resource['meridian.region'] === target.name),
      )
    );
  };
  while (!complete()) {
    if (Date.now() > deadline) {
      const traceId = pushSpan()?.traceId;
      const seen = receiver.spans.filter((span) => !traceId || span.traceId === traceId).map((span) => `${span.resource['service.name']}/${span.resource['meridian.region'] ?? '-'} ${span.name}`);
      throw new Error(`no complete trace within ${TRACE_BOUND_MS / 1000} s; ${traceId ? `the push's trace has` : 'no push span; spans seen'}: ${[...new Set(seen)].join(', ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return traceOf(pushSpan()!);
}

/** Waits until the control plane says every region holds `repository:tag`. */
async function replicatedEverywhere(repository: string, tag: string, headers: Record<string, string>): Promise<void> {
  const deadline = Date.now() + TRACE_BOUND_MS;
  for (;;) {
    const status = (await fetch(`${state.controlPlane}/api/v1/replication/status?repository=${encodeURIComponent(repository)}&reference=${tag}`, { headers }).then((r) => r.json())) as {
      regions?: Array<{ name: string; state: string }>;
    };
    const present = new Set((status.regions ?? []).filter((region) => region.state === 'present').map((region) => region.name));
    if (state.regions.every((region) => present.has(region.name))) return;
    if (Date.now() > deadline) throw new Error(`${repository}:${tag} not in every region within ${TRACE_BOUND_MS / 1000} s: ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('tracing across the cluster', () => {
  it('one trace shows a manifest push, its replication job to each other region, and each region applying it', { timeout: TRACE_BOUND_MS * 2 }, async () => {
    const [origin] = state.regions;
    const trace = await pushTraced('traced/app', 'v1');
    const services = new Set(trace.map((span) => span.resource['service.name']));
    expect(services).toEqual(new Set(['meridian-gateway', 'meridian-control-plane', 'meridian-replication-worker']));
    // The push is the trace's root, served by the origin's gateway.
    const roots = trace.filter((span) => !span.parentSpanId);
    expect(roots).toHaveLength(1);
    expect(roots[0]!.resource).toMatchObject({ 'service.name': 'meridian-gateway', 'meridian.region': origin!.name });
    // Every span's parent is in the trace: nothing was cut off on the way.
    const ids = new Set(trace.map((span) => span.spanId));
    expect(trace.filter((span) => span.parentSpanId && !ids.has(span.parentSpanId)).map((span) => span.name)).toEqual([]);
  });

  it('a push that is not traced makes no span in any process: not at the control plane, the worker, or the regions it is replicated to', { timeout: TRACE_BOUND_MS * 3 }, async () => {
    const [origin] = state.regions;
    // Every request of the push says its trace is not recorded (a caller's decision the gateway
    // follows, as it follows its own cap's); so do this test's requests to the control plane.
    const notTraced = { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00` };
    const untraced = new OciTestClient(origin!.http, notTraced);
    const earlier = new Set(receiver.spans.map((span) => span.traceId));
    const from = receiver.spans.length;
    await untraced.pushImage('untraced/app', 'v1', buildImage({ layers: 1 }));
    await replicatedEverywhere('untraced/app', 'v1', notTraced);
    // Then a traced manifest push (its blobs not traced), whose whole trace arrives after whatever
    // the untraced push made in each process (a process exports its spans in the order they end).
    const traced = new Set((await pushTraced('traced/after', 'v1', untraced)).map((span) => span.traceId));
    // The relay's batch carrying the traced change is a trace of its own, linked to the push's.
    const relays = new Set(receiver.spans.filter((span) => span.name === 'outbox.relay' && !span.parentSpanId).map((span) => span.traceId));
    const others = receiver.spans.slice(from).filter((span) => !traced.has(span.traceId) && !relays.has(span.traceId) && !earlier.has(span.traceId));
    // Before, each replica call of the untraced push's jobs was a trace in the region it reached,
    // and each relay, report and heartbeat a trace at the control plane.
    expect(others.map((span) => `${span.resource['service.name']}/${span.resource['meridian.region'] ?? '-'} ${span.name}`)).toEqual([]);
  });
});

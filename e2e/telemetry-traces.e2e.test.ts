/**
 * One trace per push, across the cluster (README, "Observability"): a cluster of three regions
 * (`pnpm cluster up`'s Cluster) exporting spans over OTLP/HTTP (JSON) to a receiver this test
 * runs. A manifest pushed to one region (distribution-spec v1.1 "Pushing manifests") must
 * show, in ONE trace, the push, the replication job for each other region, and each of those
 * regions applying it through the replica protocol: the trace context travels in the outbox
 * row, the change at the control plane, the job's data and the gRPC call's metadata.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciTestClient, buildImage, startOtlpReceiver, type OtlpReceiver } from '@meridian/testkit';
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

describe('tracing across the cluster', () => {
  it('one trace shows a manifest push, its replication job to each other region, and each region applying it', { timeout: TRACE_BOUND_MS * 2 }, async () => {
    const [origin, ...targets] = state.regions;
    const client = new OciTestClient(origin!.http);
    const image = buildImage({ layers: 1 });
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('traced/app', blob.bytes);
    const pushed = await client.pushManifest('traced/app', 'v1', image.manifestBytes, image.mediaType);
    expect(pushed.status).toBe(201);

    // The push's trace: the one holding the origin's manifest validation for this repository.
    const deadline = Date.now() + TRACE_BOUND_MS;
    const pushSpan = () =>
      receiver.spans.find((span) => span.name === 'manifest.validate' && span.attributes['meridian.repository'] === 'traced/app' && span.resource['meridian.region'] === origin!.name);
    const complete = () => {
      const push = pushSpan();
      if (!push) return false;
      const trace = receiver.spans.filter((span) => span.traceId === push.traceId);
      return targets.every(
        (target) =>
          trace.some((span) => span.name === 'replication.job' && span.attributes['meridian.target_region'] === target.name) &&
          trace.some((span) => span.name === 'replica/ApplyManifest' && span.resource['meridian.region'] === target.name),
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

    const trace = receiver.spans.filter((span) => span.traceId === pushSpan()!.traceId);
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
});

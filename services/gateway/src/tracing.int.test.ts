import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciTestClient, buildImage, createTestDatabase, startGatewayProcess, startOtlpReceiver, type GatewayProcess, type OtlpReceiver, type TestDatabase } from '@meridian/testkit';

/**
 * Which pushes a gateway traces (README, "Traces"): at most MERIDIAN_TRACE_WRITES_PER_SECOND in a
 * second of a process, decided at the request, and a push left out makes no span at all (no
 * blob write or manifest span starting a trace of its own). A gateway process exporting over
 * OTLP/HTTP (JSON) to a receiver this test runs.
 */
let receiver: OtlpReceiver;
let database: TestDatabase;
let dataDir: string;
let gateway: GatewayProcess | undefined;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  database = await createTestDatabase();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-test-tracing-'));
  // One process, so that the cap is the whole gateway's.
  gateway = await startGatewayProcess({
    databaseUrl: database.url,
    dataDir,
    env: { MERIDIAN_WORKERS: '1', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-tenant=meridian-test', MERIDIAN_TRACE_WRITES_PER_SECOND: '1' },
  });
});

afterAll(async () => {
  await gateway?.stop();
  await database?.drop();
  await receiver?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('tracing pushes', () => {
  it('traces at most MERIDIAN_TRACE_WRITES_PER_SECOND pushes a second, each whole, and nothing of the others', async () => {
    const client = new OciTestClient(gateway!.url);
    for (let i = 0; i < 12; i++) await client.pushBlob('traced/blobs', randomBytes(1024));
    const image = buildImage({ layers: 1 });
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('traced/app', blob.bytes);
    expect((await client.pushManifest('traced/app', 'v1', image.manifestBytes, image.mediaType)).status).toBe(201);
    // Stopped, the gateway exports what it still holds: every span it made is at the receiver.
    await gateway!.stop();
    gateway = undefined;

    const roots = receiver.spans.filter((span) => !span.parentSpanId);
    expect(roots.length).toBeGreaterThanOrEqual(1);
    // At most one a second of the gateway's clock, however long the pushes took here: any second
    // holds at most two roots (one at the end of a second, one at the start of the next), so the
    // first and third of any three are more than a second apart. The 10 ms allow for the start
    // times' millisecond precision and the wall clock's drift against the sampler's monotonic one.
    const starts = roots.map((span) => BigInt(span.startTimeUnixNano)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const gaps = starts.slice(2).map((start, i) => Number((start - starts[i]!) / 1_000_000n));
    expect(gaps.filter((ms) => ms < 990)).toEqual([]);
    // Every root is a push the gateway served; every other span is in one of their traces.
    expect(roots.map((span) => `${span.kind} ${span.attributes['http.request.method']}`).filter((root) => root !== '2 POST' && root !== '2 PUT')).toEqual([]);
    // Named by method and route (the gateway's own server spans, libs/telemetry request-tracing.ts).
    expect(roots.map((span) => span.name)).toContain('POST blob-upload');
    const traced = new Set(roots.map((span) => span.traceId));
    expect(receiver.spans.filter((span) => !traced.has(span.traceId)).map((span) => span.name)).toEqual([]);
    // A traced push is traced whole: its blob write is in its trace.
    expect(receiver.spans.filter((span) => span.name === 'blob.write').length).toBeGreaterThanOrEqual(1);
    // Every export carries OTEL_EXPORTER_OTLP_HEADERS (a collector's credentials).
    expect(receiver.exportHeaders.map((headers) => headers['x-collector-tenant'])).toEqual(receiver.exportHeaders.map(() => 'meridian-test'));
  });
});

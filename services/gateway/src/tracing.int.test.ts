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
    env: { MERIDIAN_WORKERS: '1', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, MERIDIAN_TRACE_WRITES_PER_SECOND: '1' },
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
    const pushes = 12;
    const started = performance.now();
    for (let i = 0; i < pushes; i++) await client.pushBlob('traced/blobs', randomBytes(1024));
    const image = buildImage({ layers: 1 });
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('traced/app', blob.bytes);
    expect((await client.pushManifest('traced/app', 'v1', image.manifestBytes, image.mediaType)).status).toBe(201);
    const seconds = (performance.now() - started) / 1000;
    // Stopped, the gateway exports what it still holds: every span it made is at the receiver.
    await gateway!.stop();
    gateway = undefined;

    const writes = pushes + 3;
    const roots = receiver.spans.filter((span) => !span.parentSpanId);
    // At most one a second, in each second the pushes touched (a first and a last, partly).
    expect(roots.length).toBeGreaterThanOrEqual(1);
    expect(roots.length).toBeLessThanOrEqual(Math.floor(seconds) + 2);
    expect(roots.length).toBeLessThan(writes);
    // Every root is a push the gateway served; every other span is in one of their traces.
    expect(roots.map((span) => `${span.kind} ${span.attributes['http.request.method']}`).filter((root) => root !== '2 POST' && root !== '2 PUT')).toEqual([]);
    // Named by method and route (the gateway's own server spans, libs/telemetry request-tracing.ts).
    expect(roots.map((span) => span.name)).toContain('POST blob-upload');
    const traced = new Set(roots.map((span) => span.traceId));
    expect(receiver.spans.filter((span) => !traced.has(span.traceId)).map((span) => span.name)).toEqual([]);
    // A traced push is traced whole: its blob write is in its trace.
    expect(receiver.spans.filter((span) => span.name === 'blob.write').length).toBeGreaterThanOrEqual(1);
  });
});

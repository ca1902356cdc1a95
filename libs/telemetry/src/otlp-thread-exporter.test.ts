import { channel } from 'node:diagnostics_channel';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { startOtlpReceiver, until, type OtlpReceiver } from '@meridian/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { OtlpThreadExporter } from './otlp-thread-exporter.js';

describe('OtlpThreadExporter', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(): Promise<{ receiver: OtlpReceiver; provider: TracerProvider }> {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: new OtlpThreadExporter(`${receiver.url}/v1/traces`) })] });
    cleanups.push(() => provider.shutdown());
    return { receiver, provider };
  }

  it('delivers spans to the collector as OTLP/HTTP JSON', async () => {
    const { receiver, provider } = await setUp();
    provider.getTracer('test').startSpan('GET manifests').end();
    await provider.forceFlush();
    await until(() => receiver.spans.length > 0);
    expect(receiver.spans.map((span) => span.name)).toEqual(['GET manifests']);
  });

  it('sends no HTTP request from the thread whose spans it exports', async () => {
    // The process's HTTP server and client share Node's HTTP code (OutgoingMessage, the parser's
    // callbacks, sockets' timers); a client request in a server's thread turned that code
    // polymorphic for good, and a gateway that had exported once served every GET after it dearer.
    const { receiver, provider } = await setUp();
    const requestsFromThisThread: unknown[] = [];
    const onRequest = (message: unknown) => void requestsFromThisThread.push(message);
    channel('http.client.request.start').subscribe(onRequest);
    cleanups.push(async () => void channel('http.client.request.start').unsubscribe(onRequest));

    provider.getTracer('test').startSpan('PUT manifests').end();
    await provider.forceFlush();
    await until(() => receiver.spans.length > 0);

    expect(requestsFromThisThread).toEqual([]);
  });

  it('sends the headers it is given with every export (OTEL_EXPORTER_OTLP_HEADERS: a collector that wants credentials)', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const exporter = new OtlpThreadExporter(`${receiver.url}/v1/traces`, { headers: { authorization: 'Bearer collector-token', 'x-tenant': 'eu' } });
    const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter })] });
    cleanups.push(() => provider.shutdown());
    provider.getTracer('test').startSpan('GET tags').end();
    await provider.forceFlush();
    await until(() => receiver.spans.length > 0);
    expect(receiver.exportHeaders[0]).toMatchObject({ authorization: 'Bearer collector-token', 'x-tenant': 'eu', 'content-type': 'application/json' });
  });

  it('reports an export the collector refuses as failed', async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    // The receiver refuses anything but /v1/traces with 415.
    const exporter = new OtlpThreadExporter(`${receiver.url}/elsewhere`);
    cleanups.push(() => exporter.shutdown());
    const provider = new TracerProvider();
    const span = provider.getTracer('test').startSpan('DELETE manifests');
    span.end();
    const result = await new Promise<{ code: number; error?: Error }>((resolve) => exporter.export([span as never], resolve));
    expect(result.code).toBe(1);
    expect(result.error?.message).toMatch(/415/);
  });
});

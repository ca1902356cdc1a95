import { SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { inSpan } from './tracing.js';

/** inSpan: a recorded span around the work, and nothing around it when the span is not recorded (README, "Traces"). */
describe('inSpan', () => {
  afterEach(() => trace.disable());

  it('hands back the work\'s own promise when no tracing is started', async () => {
    const work = Promise.resolve(42);
    const result = inSpan('test.work', {}, () => work);
    expect(result).toBe(work);
    await expect(result).resolves.toBe(42);
  });

  it('records a failure on the span, rethrows it and ends the span when tracing records', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    await expect(inSpan('test.work', {}, async () => Promise.reject(new Error('disk gone')))).rejects.toThrow('disk gone');
    await provider.forceFlush();
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('test.work');
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'disk gone' });
    expect(span?.events.map((event) => event.name)).toEqual(['exception']);
  });
});

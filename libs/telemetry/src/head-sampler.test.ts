import { ROOT_CONTEXT, SpanKind, TraceFlags, context, trace, type Span, type SpanContext } from '@opentelemetry/api';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { createSampler } from './head-sampler.js';

/**
 * A trace is decided at its head and followed downstream (README, "Traces"): an unsampled push
 * starts no trace anywhere, a sampled one is recorded whole.
 */
describe('createSampler', () => {
  const tracer = new TracerProvider({ sampler: createSampler() }).getTracer('test');
  const recorded = (span: Span) => span.isRecording();
  const remote = (flags: TraceFlags): SpanContext => ({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: flags, isRemote: true });

  it('records a server span with no parent: a request the ignore hook let through', () => {
    expect(recorded(tracer.startSpan('PUT', { kind: SpanKind.SERVER }, ROOT_CONTEXT))).toBe(true);
  });

  it('records no gRPC server span with no parent: a call from untraced work (an untraced push\'s apply, a fill for an untraced pull)', () => {
    expect(recorded(tracer.startSpan('replica/ApplyManifest', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc' } }, ROOT_CONTEXT))).toBe(false);
    // The gRPC instrumentation's, named so, its attributes set after the start.
    expect(recorded(tracer.startSpan('grpc.meridian.replica.v1.Replica/ApplyManifest', { kind: SpanKind.SERVER }, ROOT_CONTEXT))).toBe(false);
    expect(recorded(tracer.startSpan('replica/ApplyManifest', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc' } }, trace.setSpanContext(ROOT_CONTEXT, remote(TraceFlags.SAMPLED))))).toBe(true);
  });

  it('starts no trace for work with no parent: a blob write of an unsampled push, a job whose change has no trace', () => {
    expect(recorded(tracer.startSpan('blob.write', {}, ROOT_CONTEXT))).toBe(false);
    expect(recorded(tracer.startSpan('replication.job', { kind: SpanKind.CONSUMER }, ROOT_CONTEXT))).toBe(false);
    expect(recorded(tracer.startSpan('replica/ApplyManifest', { kind: SpanKind.CLIENT }, ROOT_CONTEXT))).toBe(false);
  });

  it('follows the parent, in this process or the caller\'s', () => {
    const push = tracer.startSpan('PUT', { kind: SpanKind.SERVER }, ROOT_CONTEXT);
    expect(recorded(tracer.startSpan('blob.write', {}, trace.setSpan(ROOT_CONTEXT, push)))).toBe(true);
    expect(recorded(tracer.startSpan('replication.job', { kind: SpanKind.CONSUMER }, trace.setSpanContext(ROOT_CONTEXT, remote(TraceFlags.SAMPLED))))).toBe(true);
    expect(recorded(tracer.startSpan('replica/ApplyManifest', { kind: SpanKind.SERVER }, trace.setSpanContext(ROOT_CONTEXT, remote(TraceFlags.NONE))))).toBe(false);
  });

  it('records background work for several traces (the relay\'s batch) when one of them is recorded', () => {
    const links = (flags: TraceFlags[]) => flags.map((traceFlags) => ({ context: remote(traceFlags) }));
    expect(recorded(tracer.startSpan('outbox.relay', { kind: SpanKind.PRODUCER, links: links([TraceFlags.NONE, TraceFlags.SAMPLED]) }, ROOT_CONTEXT))).toBe(true);
    expect(recorded(tracer.startSpan('outbox.relay', { kind: SpanKind.PRODUCER, links: links([TraceFlags.NONE]) }, ROOT_CONTEXT))).toBe(false);
    expect(recorded(tracer.startSpan('outbox.relay', { kind: SpanKind.PRODUCER }, context.active()))).toBe(false);
  });
});

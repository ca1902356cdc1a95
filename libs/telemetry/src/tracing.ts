import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';

/** The tracer every explicit Meridian span comes from. */
const TRACER_NAME = 'meridian';

/**
 * A W3C trace context (`traceparent`, and `tracestate` when there is one) as a plain record: how
 * a trace travels inside data (an outbox row, a change, a job) rather than in headers.
 */
export type TraceCarrier = Record<string, string>;

export interface SpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
  links?: Link[];
}

/**
 * Runs `work` in a new span named `name`, a child of the span active now, and ends the span when
 * the work settles; a failure is recorded on the span and rethrown. With no tracing started the
 * API's no-op tracer makes this cost a function call.
 */
export function inSpan<T>(name: string, options: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  // A span not recorded (tracing off, or a request not sampled) keeps nothing: the work runs as it
  // is, without the wrapper that would only call its no-ops, which cost an async frame per span.
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, options, (span) => (span.isRecording() ? recorded(span, work) : work(span)));
}

async function recorded<T>(span: Span, work: (span: Span) => Promise<T>): Promise<T> {
  try {
    return await work(span);
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
    throw err;
  } finally {
    span.end();
  }
}

/**
 * As inSpan, with the span's parent taken from `carrier` (a change's or a job's trace) rather than
 * from what runs now, so work that happens later, elsewhere, joins the trace of the request that
 * caused it. Without a carrier the span starts a trace of its own.
 */
export function inSpanOf<T>(carrier: TraceCarrier | undefined, name: string, options: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  return context.with(contextOf(carrier), () => inSpan(name, options, work));
}

/**
 * The trace context active now as a carrier to store with data, or undefined when no trace is
 * being recorded (tracing off: nothing is stored).
 */
export function currentTraceCarrier(): TraceCarrier | undefined {
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? carrier : undefined;
}

/**
 * The trace headers of a request to another process of the cluster (the control plane's admin
 * API): the trace active now, or, outside any recorded trace, a `traceparent` saying "not
 * recorded". The callee's HTTP server follows it (tracesIncomingRequest) and starts no trace of
 * its own for a call made by untraced work: without it, every relay of untraced changes, every
 * report of an untraced job and every heartbeat was the head of a trace at the control plane.
 */
export function clusterCallTraceHeaders(): TraceCarrier {
  return currentTraceCarrier() ?? { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00` };
}

/** The context a carrier describes (the root context when there is none). */
export function contextOf(carrier: TraceCarrier | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
}

/** A link to the span a carrier names, for a span that serves several traces at once (a relayed batch). */
export function linkTo(carrier: TraceCarrier | undefined): Link[] {
  const span = carrier ? trace.getSpanContext(contextOf(carrier)) : undefined;
  return span ? [{ context: span }] : [];
}

/**
 * The span of a read-through fill: the bytes of a blob (or a manifest) this region lacks,
 * fetched from a peer region while a client waits. Attributes say what was filled and from
 * where (digests are attributes of spans, never labels of metrics).
 */
export function traceReadThroughFill<T>(attributes: { repository: string; digest?: string; reference?: string; source?: string }, work: (span: Span) => Promise<T>): Promise<T> {
  return inSpan('readthrough.fill', { attributes: prefixed('meridian.fill', attributes) }, work);
}

/** `{a: 1}` → `{'prefix.a': 1}`, leaving out undefined values. */
export function prefixed(prefix: string, attributes: Record<string, string | number | boolean | undefined>): Attributes {
  return Object.fromEntries(Object.entries(attributes).filter(([, value]) => value !== undefined).map(([key, value]) => [`${prefix}.${key}`, value])) as Attributes;
}

export { SpanKind };
export type { Span };

import { SpanKind, TraceFlags, type Attributes, type Context, type Link } from '@opentelemetry/api';
import { ParentBasedSampler, SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace';

/**
 * Whether a span that has no parent starts a trace. A trace is decided once, at its head: the
 * request that starts it, which the HTTP instrumentation's ignore hook has already sampled by
 * kind (requestTracing in sdk.ts) before any span or context exists. So an HTTP server span with
 * no parent is one the hook let through, and is recorded. A gRPC server span never starts a
 * trace: every gRPC caller is a process of the cluster (the worker, a peer region's read-through,
 * the control plane) whose traced calls carry their context (traceContextInterceptor), so a call
 * with none comes from untraced work (the apply of an untraced push, a fill for an untraced pull,
 * a reconciliation), and recording it made a trace of its own, in every region called, for each
 * of them. A span with no parent of any other kind is work whose request was not sampled (a blob
 * write of an unsampled push, whose context the context manager does not carry), or background
 * work done for such requests (a job whose change carries no trace, the relay of changes none of
 * which is traced): none of it starts a trace of its own, or an unsampled push would still cost
 * its gateway, the control plane and the worker a trace each. Background work serving several
 * traces at once (the outbox relay's batch) links to them, and is recorded when one of them is.
 */
export class TraceHeadSampler implements Sampler {
  shouldSample(_context: Context, _traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    const recorded = (kind === SpanKind.SERVER && !isGrpcCall(name, attributes)) || links.some((link) => (link.context.traceFlags & TraceFlags.SAMPLED) !== 0);
    return { decision: recorded ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return 'TraceHeadSampler';
  }
}

/**
 * The process's sampler: a span with a parent follows its parent's decision, in this process or
 * in the one that called it (parent-based), so a sampled push is recorded whole across the
 * cluster and an unsampled one nowhere; a span without one is decided by TraceHeadSampler.
 */
export function createSampler(): Sampler {
  return new ParentBasedSampler({ root: new TraceHeadSampler() });
}

/**
 * A gRPC server span: ours (tracedHandlers) say `rpc.system` when they start; the gRPC
 * instrumentation's, should it patch @grpc/grpc-js, set their attributes only after, and are
 * named `grpc.<service>/<method>`.
 */
function isGrpcCall(name: string, attributes: Attributes): boolean {
  return attributes['rpc.system'] === 'grpc' || name.startsWith('grpc.');
}

import * as grpc from '@grpc/grpc-js';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace, type Attributes, type TextMapGetter } from '@opentelemetry/api';
import { currentTraceCarrier } from './tracing.js';

/**
 * A gRPC client interceptor that puts the trace context active when a call starts into the
 * call's metadata (`traceparent`, `tracestate`), so the server's span joins the caller's trace.
 */
export const traceContextInterceptor: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      for (const [key, value] of Object.entries(currentTraceCarrier() ?? {})) metadata.set(key, value);
      next(metadata, listener);
    },
  });

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  get: (metadata, key) => metadata.get(key).map(String),
  keys: (metadata) => Object.keys(metadata.getMap()),
};

/** A gRPC server handler of any of the four kinds: unary and client-streaming ones answer through a callback. */
type AnyHandler = (call: grpc.ServerUnaryCall<unknown, unknown> & grpc.ServerWritableStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => void;

/**
 * Wraps each handler of a gRPC service so that every call runs in a server span named
 * `<prefix>/<Method>`, a child of the caller's span when the call's metadata carries a trace
 * context (traceContextInterceptor on the client). The span ends when the handler answers: its
 * callback for unary and client-streaming calls, the end of the stream for server-streaming ones.
 */
export function tracedHandlers<Handlers extends object>(handlers: Handlers, prefix: string, attributes: Attributes = {}): Handlers {
  const tracer = trace.getTracer('meridian');
  const traced = Object.entries(handlers).map(([method, handler]: [string, AnyHandler]) => {
    const wrapped: AnyHandler = (call, callback) => {
      // An instrumentation may already have made the call's span; otherwise the metadata names the parent.
      const parent = trace.getSpan(context.active()) ? context.active() : propagation.extract(ROOT_CONTEXT, call.metadata, metadataGetter);
      const span = tracer.startSpan(`${prefix}/${method}`, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': method, ...attributes } }, parent);
      let ended = false;
      const end = (err?: Partial<grpc.ServiceError> | null) => {
        if (ended) return;
        ended = true;
        if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: err.details ?? err.message });
        span.end();
      };
      const active = trace.setSpan(parent, span);
      if (callback) {
        return context.with(active, () => handler(call, (err, ...answer) => (end(err), callback(err, ...answer))));
      }
      call.once('finish', () => end());
      call.once('error', (err: grpc.ServiceError) => end(err));
      call.once('cancelled', () => end({ message: 'cancelled' }));
      return context.with(active, () => handler(call));
    };
    return [method, wrapped] as const;
  });
  return Object.fromEntries(traced) as Handlers;
}

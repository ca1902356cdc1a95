import type { IncomingMessage, ServerResponse } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { pathOf, type Middleware } from './http.js';
import { tracesIncomingRequest, type IncomingRequestSampling } from './request-sampler.js';

export interface RequestTracingOptions {
  sampling: IncomingRequestSampling;
  /** The name of the route that answered, read once the response is over (as the request metrics' routeOf). */
  routeOf(req: IncomingMessage, res: ServerResponse): string;
}

/**
 * The server span of each traced request, for a service that makes them itself rather than
 * through the HTTP instrumentation (startTracing's `httpServerSpans: false`): the gateway. The
 * instrumentation wraps the `emit` of every server, and passes every request, traced or not,
 * through its hook, a context it makes and enters, and two binds; in CPU profiles of a gateway
 * serving manifest GETs that was 2.7 % of its busy time, against 0.2 % untraced, all of it for
 * requests that are not traced. Here a request left out costs the sampler's decision and nothing
 * else. A traced one gets a span as the instrumentation's (SERVER, a child of the caller's
 * `traceparent`, named by method and route, with the status, an error from 500 on), and the rest
 * of the middleware chain runs in its context.
 */
export function createRequestTracingMiddleware({ sampling, routeOf }: RequestTracingOptions): Middleware {
  const tracer = trace.getTracer('meridian');
  return (req, res, next) => {
    if (!tracesIncomingRequest(req, sampling)) return next();
    const method = req.method ?? 'GET';
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': pathOf(req) } }, parent);
    res.once('close', () => {
      const route = routeOf(req, res);
      span.updateName(`${method} ${route}`);
      span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  };
}

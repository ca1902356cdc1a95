import { EventEmitter } from 'node:events';
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TraceFlags, trace, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import type { ServiceName } from './metrics.js';
import type { Middleware } from './http.js';
import { RequestSampler, tracesIncomingRequest } from './request-sampler.js';
import { createRequestTracingMiddleware } from './request-tracing.js';

export interface TracingOptions {
  service: ServiceName;
  /** The share of reads (incoming GET and HEAD requests) that start a trace. Default READ_SAMPLE_RATIO. */
  readSampleRatio?: number;
  /** Of those, at most this many in any one second of the process (RequestSampler). Default READ_TRACES_PER_SECOND. */
  readTracesPerSecond?: number;
  /**
   * Incoming requests of any other method (pushes, deletes) that start a trace, at most, in any
   * one second of the process. Default WRITE_TRACES_PER_SECOND.
   */
  writeTracesPerSecond?: number;
  /**
   * Whether express's routers are instrumented (default true). The gateway's routing is its own
   * middleware over the route table, which the instrumentation would wrap for nothing.
   */
  express?: boolean;
  /**
   * Whether the HTTP instrumentation makes the spans of incoming requests (default true). A
   * service that makes them itself with the middleware `Tracing.requests` gives (the gateway)
   * says false, and its requests skip the instrumentation altogether (request-tracing.ts).
   */
  httpServerSpans?: boolean;
  /** The region a regional process serves. */
  region?: string;
  /**
   * The OTLP/HTTP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://collector:4318): spans go
   * to its /v1/traces.
   */
  endpoint: string;
}

export interface Tracing {
  /**
   * The middleware that makes the server span of each request the process samples, for a
   * service started with `httpServerSpans: false`; run it ahead of the app (the gateway calls it
   * before express), so that the rest of the request runs in the span's context.
   * `routeOf` names the route that answered (as the request metrics').
   */
  requests(routeOf: (req: IncomingMessage, res: ServerResponse) => string): Middleware;
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * Pulls outnumber pushes by orders of magnitude and are the path whose cost matters most
 * (thousands of manifest GETs a second per gateway); a trace of each would cost them more than
 * the budget (README, "Observability"). One in a hundred shows what a pull does.
 */
export const READ_SAMPLE_RATIO = 0.01;

/**
 * Enough reads to show what a pull does, at any load: one a second in each process, 3 600 an
 * hour. The ratio alone traced dozens a second in a gateway process busy with manifest GETs, and
 * each traced GET costs every GET in flight beside it (the async hook is on while its span is
 * open): with ten a second, tracing's own frames took 1.1 to 1.4 % of a gateway's CPU samples
 * serving manifest GETs, and a gateway tracing none took about 5 % less CPU per GET than one
 * tracing ten (e2e/bench/README.md).
 */
export const READ_TRACES_PER_SECOND = 1;

/**
 * Enough writes a second to show what a push does, and what follows it in every region (the
 * relay, the job, the apply): a trace of every push kept a span open at nearly every moment of a
 * busy gateway, and with it the async hook on every promise of the process (see
 * WhileSpansOpenContextManager), which cost 1 MiB pushes a fifth of their throughput.
 */
export const WRITE_TRACES_PER_SECOND = 10;

/**
 * Starts the OpenTelemetry SDK for this process: spans exported over OTLP/HTTP in batches, from a
 * thread of their own (OtlpThreadExporter), and the instrumentations of node:http, express, pg,
 * ioredis and gRPC. Call it before the modules it instruments are imported (main.ts imports the
 * composition root after it), and only when an endpoint is configured: without one the SDK is
 * never loaded, and every span of @opentelemetry/api is a no-op.
 *
 * A trace is decided at its head, the request that starts it: reads and writes each up to a
 * number a second (tracesIncomingRequest, before the HTTP instrumentation makes a span or enters
 * a context); every span with a parent follows its parent's decision, so a sampled push is
 * traced through the outbox, the job and the apply in every region, and an unsampled one
 * nowhere (createSampler). Database and Redis spans are made only inside a trace (a request, a
 * job): the outbox relay's polling and BullMQ's would otherwise start a trace every second.
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  // No ES module loader hook (import-in-the-middle): with one registered, a gateway serving
  // manifest GETs took 2.5 times the CPU, even with no instrumentation at all. The packages
  // instrumented here are CommonJS, which the instrumentations reach without it (ES imports of
  // CommonJS go through require's loader); the trace's way between regions does not depend on
  // any of them (grpc.ts, the outbox's trace column).
  const sampling = {
    reads: new RequestSampler({ ratio: options.readSampleRatio ?? READ_SAMPLE_RATIO, perSecond: options.readTracesPerSecond ?? READ_TRACES_PER_SECOND }),
    writes: new RequestSampler({ ratio: 1, perSecond: options.writeTracesPerSecond ?? WRITE_TRACES_PER_SECOND }),
  };
  const [{ createSampler }, { NodeSDK }, { BatchSpanProcessor }, { OtlpThreadExporter }, { resourceFromAttributes }, { getStringFromEnv, parseKeyPairsIntoRecord }, http, express, pg, ioredis, grpc] = await Promise.all([
    import('./head-sampler.js'),
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/sdk-trace'),
    import('./otlp-thread-exporter.js'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-grpc'),
  ]);
  // The SDK reads its standard variables itself (OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES); the
  // exporter's headers (a collector's credentials) are read as OTLPTraceExporter read them, with
  // OpenTelemetry's own parser, the traces-only variable over the general one.
  const exportHeaders = {
    ...parseKeyPairsIntoRecord(getStringFromEnv('OTEL_EXPORTER_OTLP_HEADERS')),
    ...parseKeyPairsIntoRecord(getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_HEADERS')),
  };
  const contextManager = new WhileSpansOpenContextManager();
  const sdk = new NodeSDK({
    contextManager,
    sampler: createSampler(),
    resource: resourceFromAttributes({
      'service.name': `meridian-${options.service}`,
      'service.namespace': 'meridian',
      ...(options.region ? { 'meridian.region': options.region } : {}),
    }),
    // Traces only: the metrics are prom-client's, on /metrics. Left to its defaults, the SDK also
    // started an OTLP metrics exporter (fed by the HTTP instrumentation's own histograms, on every
    // traced request) and an OTLP logs one.
    metricReaders: [],
    logRecordProcessors: [],
    spanProcessors: [
      new BatchSpanProcessor({ exporter: new OtlpThreadExporter(`${options.endpoint.replace(/\/+$/, '')}/v1/traces`, { headers: exportHeaders }) }),
      contextManager.spanTracker,
    ],
    instrumentations: [
      new http.HttpInstrumentation({
        disableIncomingRequestInstrumentation: options.httpServerSpans === false,
        // A request left out here costs next to nothing; one sampled out later would still pay for its span.
        ignoreIncomingRequestHook: (req) => !tracesIncomingRequest(req, sampling),
        // Outgoing requests (the relay's to the control plane) start no trace of their own.
        requireParentforOutgoingSpans: true,
      }),
      // Only routers and route handlers: a span per middleware would cost every request more than it tells.
      ...(options.express === false ? [] : [new express.ExpressInstrumentation({ ignoreLayersType: [express.ExpressLayerType.MIDDLEWARE] })]),
      // No span for taking a pooled connection (pg-pool.connect, pg.connect): two of a push's
      // seven spans, each as dear as a query's, and the query spans show the database's time already.
      new pg.PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
      new ioredis.IORedisInstrumentation({ requireParentSpan: true }),
      new grpc.GrpcInstrumentation(),
    ],
  });
  sdk.start();
  return {
    requests: (routeOf) => createRequestTracingMiddleware({ sampling, routeOf }),
    shutdown: () => sdk.shutdown(),
  };
}

/**
 * OpenTelemetry's AsyncLocalStorage context manager, switched off while no recorded span is
 * open in the process. On Node 20, an AsyncLocalStorage in use makes every promise of the
 * process run an async hook: promise-heavy code measured here took 2.7 times the CPU, and a
 * gateway serving manifest GETs from its cache (client and server in one process) 30 % more.
 * Most of a gateway's requests are pulls that are not traced; with this manager they run with
 * the hook off unless a traced request (a push) is in flight at the same time.
 *
 * A context is carried across asynchronous steps only from the moment a span it holds starts
 * to the moment the last open span ends; a span's own work lies within that, since every
 * span of ours and of the instrumentations ends once its work is done. Work that enters a
 * context after that (a callback bound to a span's context, called once the span has ended)
 * gets the context for its synchronous run only: left on, the hook stayed on for every request
 * after the first traced one until the next traced one ended, and a gateway that had taken one
 * push served all its pulls with it.
 *
 * Emitters are never bound (`bind`).
 */
export class WhileSpansOpenContextManager extends AsyncLocalStorageContextManager {
  private open = 0;

  /** Counts the spans open: the first switches propagation on, the last to end switches it off. */
  readonly spanTracker: SpanProcessor = {
    onStart: () => void this.open++,
    onEnd: () => {
      if (--this.open === 0) this.storage.disable();
    },
    forceFlush: async () => undefined,
    shutdown: async () => undefined,
  };

  /** Whether contexts are carried across asynchronous steps now, at the cost of a hook on every promise. */
  get propagating(): boolean {
    return (this.storage as unknown as { enabled: boolean }).enabled;
  }

  override with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    // Nothing to carry (an untraced request, whose context only says "do not trace"; an
    // unsampled span's): no hook.
    if (this.idleFor(context)) return fn.call(thisArg as ThisParameterType<F>, ...args);
    // A context naming a recorded span (a job continuing a push, a listener of a traced request) is
    // carried while `fn` runs, open spans or not; if no span is open when it returns, nothing
    // is left to carry later.
    try {
      return super.with(context, fn, thisArg, ...args);
    } finally {
      if (this.open === 0) this.storage.disable();
    }
  }

  /**
   * An emitter is left as it is. The HTTP and gRPC instrumentations bind every traced request's
   * and response's emitters to its span, which patches their listener methods and wraps every
   * listener added later, at each request; nothing of ours needs it. A request's work carries
   * its context through its awaits (its handler runs inside `with`), and the listeners on a
   * request or response (the body's reader, byte counters, the request metrics) record nothing
   * in a trace. CPU profiles of a traced gateway taking 1 MiB pushes: the OpenTelemetry and
   * async_hooks functions' own time fell from 0.75 to 0.58 of the time spent hashing the bytes.
   *
   * A function bound to a context that names no recorded span (what the HTTP instrumentation
   * gives an untraced request, saying "do not trace") is left as it is too while no span is open:
   * the same rule as `with`.
   */
  override bind<T>(context: Context, target: T): T {
    if (target instanceof EventEmitter || this.idleFor(context)) return target;
    return super.bind(context, target);
  }

  /**
   * A context whose span is not recorded (an unsampled job's, a gRPC call of one, the invalid
   * span the HTTP instrumentation gives an outgoing request outside any trace) has nothing to
   * carry either: whatever starts under it would not be recorded (createSampler), and without it
   * a span of no parent is not recorded either (TraceHeadSampler).
   */
  private idleFor(context: Context): boolean {
    return this.open === 0 && !((trace.getSpanContext(context)?.traceFlags ?? TraceFlags.NONE) & TraceFlags.SAMPLED);
  }

  private get storage(): AsyncLocalStorage<unknown> {
    return (this as unknown as { _asyncLocalStorage: AsyncLocalStorage<unknown> })._asyncLocalStorage;
  }
}

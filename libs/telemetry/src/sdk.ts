import { register } from 'node:module';
import type { ServiceName } from './metrics.js';

export interface TracingOptions {
  service: ServiceName;
  /**
   * The share of traces started by a read (an incoming GET or HEAD) that are recorded; every
   * trace started otherwise (a push, a delete, a job) is. Default READ_SAMPLE_RATIO.
   */
  readSampleRatio?: number;
  /** The region a regional process serves. */
  region?: string;
  /**
   * The OTLP/HTTP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://collector:4318): spans go
   * to its /v1/traces.
   */
  endpoint: string;
}

export interface Tracing {
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * Pulls outnumber pushes by orders of magnitude and are the path whose cost matters most
 * (thousands of manifest GETs a second per gateway); a trace of each would cost them more than
 * the budget (README, "Observability"). One in a hundred shows what a pull does.
 */
export const READ_SAMPLE_RATIO = 0.01;

/** The packages the instrumentations below patch. */
const INSTRUMENTED_MODULES = ['http', 'https', 'express', 'pg', 'pg-pool', 'ioredis', '@grpc/grpc-js'];

/** Requests nobody needs a trace of: scrapes and probes, which come every few seconds. */
const UNTRACED_PATHS = new Set(['/metrics', '/healthz', '/readyz']);

/**
 * Starts the OpenTelemetry SDK for this process: spans exported over OTLP/HTTP in batches, and
 * the instrumentations of node:http, express, pg, ioredis and gRPC. Call it before the modules
 * it instruments are imported (main.ts imports the composition root after it), and only when
 * an endpoint is configured: without one the SDK is never loaded, and every span of
 * @opentelemetry/api is a no-op.
 *
 * Database and Redis spans are made only inside a trace (a request, a job): the outbox relay's
 * polling and BullMQ's would otherwise start a trace every second.
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  // The services are ES modules: their imports reach the instrumentations only through this
  // hook. Only the instrumented packages go through it: every module it wraps costs every
  // access to its exports a little, and the gateway's hot path runs through hundreds.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: INSTRUMENTED_MODULES } });
  const readRatio = options.readSampleRatio ?? READ_SAMPLE_RATIO;
  const [{ NodeSDK }, { OTLPTraceExporter }, { resourceFromAttributes }, http, express, pg, ioredis, grpc] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-grpc'),
  ]);
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      'service.name': `meridian-${options.service}`,
      'service.namespace': 'meridian',
      ...(options.region ? { 'meridian.region': options.region } : {}),
    }),
    traceExporter: new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces` }),
    instrumentations: [
      new http.HttpInstrumentation({
        // A read left out here costs next to nothing; one sampled out later would still pay for its span.
        ignoreIncomingRequestHook: (req) =>
          UNTRACED_PATHS.has((req.url ?? '').split('?')[0]!) || ((req.method === 'GET' || req.method === 'HEAD') && Math.random() >= readRatio),
        // Outgoing requests (the relay's to the control plane) start no trace of their own.
        requireParentforOutgoingSpans: true,
      }),
      // Only routers and route handlers: a span per middleware would cost every request more than it tells.
      new express.ExpressInstrumentation({ ignoreLayersType: [express.ExpressLayerType.MIDDLEWARE] }),
      new pg.PgInstrumentation({ requireParentSpan: true }),
      new ioredis.IORedisInstrumentation({ requireParentSpan: true }),
      new grpc.GrpcInstrumentation(),
    ],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}

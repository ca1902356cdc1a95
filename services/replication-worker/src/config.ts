import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_QUEUE_PREFIX } from '@meridian/proto';

/**
 * The replication worker's whole configuration, from the environment (CONTRIBUTING.md,
 * 'Configuration'). `loadConfig` is called once, from main.ts; nothing else reads process.env.
 * A bad value stops the start with one line naming the variable; an empty variable counts as unset.
 */
const schema = z.object({
  /** Where the worker serves /metrics, /healthz and /readyz: loopback unless told otherwise, as it has no access control. */
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(5200),
  REDIS_URL: z
    .string()
    .url()
    .refine((value) => /^rediss?:$/.test(new URL(value).protocol), 'must be a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379'),
  /** Namespace of the BullMQ keys in Redis: the control plane's MERIDIAN_QUEUE_PREFIX, so both see one queue. */
  MERIDIAN_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" and "-"').default(DEFAULT_QUEUE_PREFIX),
  /** The control plane's admin API (regions to read, outcomes to report). No default: a worker without one has nothing to do. */
  MERIDIAN_CONTROL_PLANE: z
    .string({ error: (issue) => (issue.input === undefined ? 'required: the control plane admin API URL, e.g. http://127.0.0.1:5100' : undefined) })
    .url(),
  /** The secret every process of the cluster shares: the worker signs its replica calls with service tokens derived from it. */
  MERIDIAN_CLUSTER_SECRET: z
    .string({ error: (issue) => (issue.input === undefined ? 'required: the secret every process of the cluster shares, at least 32 characters (openssl rand -base64 32 makes one)' : undefined) })
    .min(32, 'must be at least 32 characters (openssl rand -base64 32 makes one)'),
  /** A PEM file of the authority the worker's replica clients trust; set, they speak TLS to the regions. */
  MERIDIAN_TLS_CA: z.string().min(1).optional(),
  /** PEM certificate and key: set both and /metrics, /healthz and /readyz are served over HTTPS. */
  MERIDIAN_TLS_CERT: z.string().min(1).optional(),
  MERIDIAN_TLS_KEY: z.string().min(1).optional(),
  /** Jobs this process runs at once, whatever their target. */
  MERIDIAN_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  /** Jobs this process runs at once against any one target region, so a region catching up is not flooded. */
  MERIDIAN_REGION_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
  /** How long SIGTERM waits for running jobs before handing them back to the queue. */
  MERIDIAN_SHUTDOWN_GRACE_SECONDS: z.coerce.number().nonnegative().default(30),
  /** OpenTelemetry's standard variable: the OTLP/HTTP endpoint spans are exported to. Unset: no tracing at all. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().refine((value) => /^https?:$/.test(new URL(value).protocol), 'must be an http:// or https:// URL (OTLP over HTTP)').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).superRefine((e, ctx) => {
  if (Boolean(e.MERIDIAN_TLS_CERT) !== Boolean(e.MERIDIAN_TLS_KEY)) {
    ctx.addIssue({ code: 'custom', path: [e.MERIDIAN_TLS_CERT ? 'MERIDIAN_TLS_KEY' : 'MERIDIAN_TLS_CERT'], message: 'required with the other of MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY: set both to serve HTTPS, or neither' });
  }
});

export interface WorkerConfig {
  host: string;
  port: number;
  redisUrl: string;
  queuePrefix: string;
  controlPlaneUrl: string;
  /** The cluster's shared secret; never logged. */
  clusterSecret: string;
  /** Path of the PEM authority the replica clients trust, when they speak TLS. */
  tlsCaFile?: string;
  /** The certificate /metrics and the health endpoints are served with (HTTPS), when given. */
  tls?: { certFile: string; keyFile: string };
  workerConcurrency: number;
  regionConcurrency: number;
  shutdownGraceMs: number;
  /** Where spans are exported (OTLP/HTTP), when tracing is on. */
  otlpEndpoint?: string;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
}

export function loadConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = schema.safeParse(set);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  return {
    host: e.HOST,
    port: e.PORT,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.MERIDIAN_QUEUE_PREFIX,
    controlPlaneUrl: e.MERIDIAN_CONTROL_PLANE.replace(/\/+$/, ''),
    clusterSecret: e.MERIDIAN_CLUSTER_SECRET,
    ...(e.MERIDIAN_TLS_CA ? { tlsCaFile: path.resolve(e.MERIDIAN_TLS_CA) } : {}),
    ...(e.MERIDIAN_TLS_CERT && e.MERIDIAN_TLS_KEY ? { tls: { certFile: path.resolve(e.MERIDIAN_TLS_CERT), keyFile: path.resolve(e.MERIDIAN_TLS_KEY) } } : {}),
    workerConcurrency: e.MERIDIAN_WORKER_CONCURRENCY,
    regionConcurrency: e.MERIDIAN_REGION_CONCURRENCY,
    shutdownGraceMs: e.MERIDIAN_SHUTDOWN_GRACE_SECONDS * 1000,
    ...(e.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT } : {}),
    logLevel: e.LOG_LEVEL,
  };
}

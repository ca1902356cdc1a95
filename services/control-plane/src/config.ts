import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_QUEUE_PREFIX } from '@meridian/proto';
import { cidrListProblem, parseCidrList } from '@meridian/auth';
import type { SignInFailureLimits } from '@meridian/metadata';

/**
 * The control plane's whole configuration, from the environment (CONTRIBUTING.md,
 * 'Configuration'). `loadConfig` is called once, from main.ts; nothing else reads process.env.
 * A bad value stops the start naming its variable; an empty variable counts as unset.
 */
const schema = z.object({
  /** The admin API binds loopback unless told otherwise: with MERIDIAN_AUTH=off it has no access control. */
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(5100),
  /** The global database (regions, changes, catalog, replication state); created if absent. */
  CONTROL_PLANE_DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/meridian_control'),
  REDIS_URL: z
    .string()
    .url()
    .refine((value) => /^rediss?:$/.test(new URL(value).protocol), 'must be a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379'),
  /**
   * Namespace of the BullMQ keys in Redis; the replication worker must use the same one. Lets
   * several clusters (or test runs) share one Redis.
   */
  MERIDIAN_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" and "-"').default(DEFAULT_QUEUE_PREFIX),
  /** How often every replication still pending in Postgres is (re)added to the queue. */
  MERIDIAN_REQUEUE_INTERVAL_SECONDS: z.coerce.number().positive().max(86_400).default(10),
  /** How often each region's inventory is compared with the catalog and repaired; 0 turns it off. */
  MERIDIAN_RECONCILE_INTERVAL_SECONDS: z.coerce.number().min(0).max(604_800).default(300),
  /** How often a periodic reconciliation also re-hashes every blob each region holds; 0 turns it off. */
  MERIDIAN_RECONCILE_VERIFY_INTERVAL_SECONDS: z.coerce.number().min(0).max(31_536_000).default(86_400),
  /** How many days the cluster's audit log keeps an entry; older ones are deleted, hourly, in batches. 0 keeps them for good. */
  MERIDIAN_AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(365),
  /** OpenTelemetry's standard variable: the OTLP/HTTP endpoint spans are exported to. Unset: no tracing at all. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().refine((value) => /^https?:$/.test(new URL(value).protocol), 'must be an http:// or https:// URL (OTLP over HTTP)').optional(),
  /**
   * How often the dashboard asks each region's gateway for /readyz and /metrics and reads its
   * replication figures; a region that stops answering shows as down within about this long.
   */
  MERIDIAN_DASHBOARD_SCRAPE_INTERVAL_SECONDS: z.coerce.number().min(0.5).max(60).default(3),
  /** On SIGTERM, how long requests in flight may finish before their connections are cut. */
  MERIDIAN_SHUTDOWN_GRACE_SECONDS: z.coerce.number().positive().max(3600).default(30),
  /** PEM files of the certificate (chain) and key: set both, and the admin API serves HTTPS (TLS 1.2 at least). */
  MERIDIAN_TLS_CERT: z.string().min(1).optional(),
  MERIDIAN_TLS_KEY: z.string().min(1).optional(),
  /** A PEM file of the authority the control plane's replica clients trust; set, they speak TLS to the regions. */
  MERIDIAN_TLS_CA: z.string().min(1).optional(),
  /** The secret every process of the cluster shares: the control plane signs its replica calls (inventory, purge) with service tokens derived from it, and with MERIDIAN_AUTH=on checks the service tokens gateways, the worker and the router send to its admin API. */
  MERIDIAN_CLUSTER_SECRET: z
    .string({ error: (issue) => (issue.input === undefined ? 'required: the secret every process of the cluster shares, at least 32 characters (openssl rand -base64 32 makes one)' : undefined) })
    .min(32, 'must be at least 32 characters (openssl rand -base64 32 makes one)'),
  /**
   * Whether the admin API, the dashboard and the identity admin API ask for credentials: an
   * administrator's (Basic) or a cluster service's (a service token signed with
   * MERIDIAN_CLUSTER_SECRET). On unless turned off, as the gateway's: an admin API anyone who
   * reaches its port may use can remove regions and grant itself every repository, so `off` is
   * for a throwaway cluster only, and the start says so loudly.
   */
  MERIDIAN_AUTH: z.enum(['on', 'off']).default('on'),
  /**
   * The password of the cluster's administrator `admin`, with MERIDIAN_AUTH=on. Set, it is
   * (re)applied at every start; unset, one is made once and written to <data dir>/admin-password (0600).
   */
  MERIDIAN_ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  /** Where the control plane keeps its files (today only a generated admin-password). */
  MERIDIAN_DATA_DIR: z.string().min(1).default('./data/control-plane'),
  /**
   * With MERIDIAN_AUTH=on: failed sign-ins (Basic credentials refused) one name, and one client
   * address, may have within the window; further attempts are refused with 429 unchecked until
   * it ends. The same settings, and defaults, as a gateway's.
   */
  MERIDIAN_SIGN_IN_FAILURES_PER_NAME: z.coerce.number().int().min(1).default(10),
  MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).default(50),
  MERIDIAN_SIGN_IN_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  /**
   * Proxies in front of the admin API (addresses and ranges, comma-separated): a request whose
   * TCP peer is one of them counts as coming from the nearest X-Forwarded-For address none of
   * them owns, for sign-in limits and the audit log. Unset: from its TCP peer.
   */
  MERIDIAN_TRUSTED_PROXIES: z.string().refine((text) => cidrListProblem(text) === undefined, { error: (issue) => cidrListProblem(String(issue.input)) }).default(''),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).superRefine((e, ctx) => {
  if (Boolean(e.MERIDIAN_TLS_CERT) !== Boolean(e.MERIDIAN_TLS_KEY)) {
    const missing = e.MERIDIAN_TLS_CERT ? 'MERIDIAN_TLS_KEY' : 'MERIDIAN_TLS_CERT';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'required with the other of MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY: set both to serve HTTPS, or neither' });
  }
});

/**
 * An operator's mistake found while starting (a bad variable, a database that cannot be reached):
 * main.ts prints its one-line message, naming the variable, without a stack.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

export interface ControlPlaneConfig {
  host: string;
  port: number;
  databaseUrl: string;
  redisUrl: string;
  queuePrefix: string;
  requeueIntervalMs: number;
  reconcileIntervalMs: number;
  reconcileVerifyIntervalMs: number;
  /** 0: the audit log is kept for good. */
  auditRetentionDays: number;
  /** Where spans are exported (OTLP/HTTP), when tracing is on. */
  otlpEndpoint?: string;
  dashboardScrapeIntervalMs: number;
  shutdownGraceMs: number;
  /** The cluster's shared secret; never logged. */
  clusterSecret: string;
  /** Paths of the PEM certificate and key, when the admin API serves HTTPS. */
  tls?: { certFile: string; keyFile: string };
  /** Path of the PEM authority the replica clients trust, when they speak TLS. */
  tlsCaFile?: string;
  /** Proxies whose X-Forwarded-For is believed, as address ranges (CIDR). */
  trustedProxies: string[];
  /** Identity and access; undefined with MERIDIAN_AUTH=off. */
  auth?: ControlPlaneAuthConfig;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
}

export interface ControlPlaneAuthConfig {
  adminPassword?: string;
  dataDir: string;
  signInLimits: SignInFailureLimits;
}

export function loadConfig(env: NodeJS.ProcessEnv): ControlPlaneConfig {
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = schema.safeParse(set);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new StartupError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  return {
    host: e.HOST,
    port: e.PORT,
    databaseUrl: e.CONTROL_PLANE_DATABASE_URL,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.MERIDIAN_QUEUE_PREFIX,
    requeueIntervalMs: e.MERIDIAN_REQUEUE_INTERVAL_SECONDS * 1000,
    reconcileIntervalMs: e.MERIDIAN_RECONCILE_INTERVAL_SECONDS * 1000,
    reconcileVerifyIntervalMs: e.MERIDIAN_RECONCILE_VERIFY_INTERVAL_SECONDS * 1000,
    auditRetentionDays: e.MERIDIAN_AUDIT_RETENTION_DAYS,
    ...(e.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT } : {}),
    dashboardScrapeIntervalMs: e.MERIDIAN_DASHBOARD_SCRAPE_INTERVAL_SECONDS * 1000,
    shutdownGraceMs: e.MERIDIAN_SHUTDOWN_GRACE_SECONDS * 1000,
    clusterSecret: e.MERIDIAN_CLUSTER_SECRET,
    ...(e.MERIDIAN_TLS_CERT && e.MERIDIAN_TLS_KEY ? { tls: { certFile: path.resolve(e.MERIDIAN_TLS_CERT), keyFile: path.resolve(e.MERIDIAN_TLS_KEY) } } : {}),
    ...(e.MERIDIAN_TLS_CA ? { tlsCaFile: path.resolve(e.MERIDIAN_TLS_CA) } : {}),
    trustedProxies: parseCidrList(e.MERIDIAN_TRUSTED_PROXIES),
    ...(e.MERIDIAN_AUTH === 'on'
      ? {
          auth: {
            ...(e.MERIDIAN_ADMIN_PASSWORD ? { adminPassword: e.MERIDIAN_ADMIN_PASSWORD } : {}),
            dataDir: path.resolve(e.MERIDIAN_DATA_DIR),
            signInLimits: {
              perName: e.MERIDIAN_SIGN_IN_FAILURES_PER_NAME,
              perAddress: e.MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS,
              windowSeconds: e.MERIDIAN_SIGN_IN_WINDOW_SECONDS,
            },
          },
        }
      : {}),
    logLevel: e.LOG_LEVEL,
  };
}

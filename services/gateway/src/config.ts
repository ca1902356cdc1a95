import path from 'node:path';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { cidrListProblem, parseCidrList } from '@meridian/auth';
import type { SignInFailureLimits } from '@meridian/metadata';
import { UPLOAD_MAX_IDLE_BOUND_MS } from '@meridian/registry';
import { StartupError, maskPassword } from './startup-errors.js';

/** A whole number in [min, max], from its decimal text; the message says what is allowed. */
const wholeNumber = (min: number, max?: number) => {
  const error = `expected a whole number from ${min}${max === undefined ? ' up' : ` to ${max}`}`;
  const atLeast = z.coerce.number({ error }).int({ error }).min(min, { error });
  return max === undefined ? atLeast : atLeast.max(max, { error });
};
const positiveNumber = () => z.coerce.number({ error: 'expected a number above 0' }).positive({ error: 'expected a number above 0' });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { error: `expected one of ${values.join(', ')}` });

const addressRanges = z.string().refine((text) => cidrListProblem(text) === undefined, { error: (issue) => cidrListProblem(String(issue.input)) }).default('');

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/meridian';

/**
 * The region's database: a postgres:// URL naming a database that the gateway can create if it
 * is absent (ensureDatabase interpolates the name, so it takes only these characters).
 */
const databaseUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a URL like postgres://USER:PASSWORD@HOST:PORT/DATABASE' });
    return;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    ctx.addIssue({ code: 'custom', message: `expected a postgres:// or postgresql:// URL, not ${url.protocol}//` });
    return;
  }
  const name = url.pathname.replace(/^\//, '');
  if (!/^[A-Za-z0-9_]+$/.test(decodeURIComponent(name))) {
    ctx.addIssue({ code: 'custom', message: name ? `the database name "${name}" may hold only letters, digits and _` : 'names no database: add /DATABASE after the port' });
  }
});

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The gateway's whole configuration, from the environment (CONTRIBUTING.md, 'Configuration').
 * `loadConfig` is called once, from main.ts; nothing else reads process.env. A bad value stops
 * the start naming its key.
 */
const schema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: wholeNumber(0, 65535).default(5000),
  DATABASE_URL: databaseUrl.default(DEFAULT_DATABASE_URL),
  DATABASE_POOL_SIZE: wholeNumber(1, 200).default(16),
  /**
   * Gateway processes sharing the port (node:cluster); each is a full gateway of the region.
   * 1 runs a single process without a supervisor.
   */
  MERIDIAN_WORKERS: wholeNumber(1, 64).default(availableParallelism()),
  MERIDIAN_DATA_DIR: z.string().min(1).default('.meridian/data'),
  MERIDIAN_REGION: z.string().regex(/^[a-z0-9-]{1,63}$/, { error: 'expected 1 to 63 of a-z, 0-9 and -' }).default('local'),
  MERIDIAN_STORAGE_DRIVER: oneOf(['filesystem']).default('filesystem'),
  /**
   * Whether large blob writes bypass the page cache (O_DIRECT) where the filesystem allows it:
   * faster pushes on virtual machines, and pushes that do not evict what pulls are reading.
   */
  MERIDIAN_DIRECT_WRITES: oneOf(['true', 'false']).default('true'),
  /**
   * Signs upload-session state in Location URLs. Every gateway of a region must share it
   * (Distribution's handlers/app.go warns why); when unset, one is created once in the data
   * directory, which the region's gateways share.
   */
  MERIDIAN_UPLOAD_SECRET: z.string().min(32, 'must be at least 32 characters (openssl rand -base64 32 makes one)').optional(),
  /**
   * Upload sessions idle for longer than this are purged. At most a week: every gateway keeps
   * the record of an ended session that long (UPLOAD_MAX_IDLE_BOUND_MS), whatever its own
   * setting, so that no upload URL outlives it.
   */
  MERIDIAN_UPLOAD_MAX_IDLE_HOURS: positiveNumber().max(UPLOAD_MAX_IDLE_BOUND_MS / 3600_000, {
    error: `expected at most ${UPLOAD_MAX_IDLE_BOUND_MS / 3600_000} (a week)`,
  }).default(24),
  /**
   * How many days the region's audit log keeps an entry; older ones are deleted, hourly, in
   * batches. 0 keeps them for good. In a cluster, an entry the control plane does not hold yet
   * stays until it does.
   */
  MERIDIAN_AUDIT_RETENTION_DAYS: wholeNumber(0, 36_500).default(365),
  /** Entries in the in-memory manifest and blob-existence caches. */
  MERIDIAN_CACHE_ENTRIES: wholeNumber(0).default(50_000),
  /** How long SIGTERM waits for in-flight requests before closing connections. */
  MERIDIAN_SHUTDOWN_GRACE_SECONDS: positiveNumber().default(30),
  /**
   * A connection that has sent and received nothing for this long is closed, so a stalled client
   * cannot hold an upload session's lock, or a pull's read buffers, for ever. A slow link that
   * keeps moving bytes is never cut.
   */
  MERIDIAN_IDLE_TIMEOUT_SECONDS: positiveNumber().default(300),
  /**
   * Where the region serves the replica protocol (gRPC) to the replication worker and its peers.
   * Unset: no replica server (a region on its own, as `pnpm start` runs by default).
   */
  MERIDIAN_GRPC_PORT: wholeNumber(0, 65535).optional(),
  /** The replica server binds loopback unless told otherwise. */
  MERIDIAN_GRPC_HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * PEM files of the certificate (chain) and private key: set both, and the gateway serves HTTPS
   * (TLS 1.2 at least), as does its replica server.
   */
  MERIDIAN_TLS_CERT: z.string().min(1).optional(),
  MERIDIAN_TLS_KEY: z.string().min(1).optional(),
  /** A PEM file of the authority the region's replica clients (read-through from peers) trust; set, they speak TLS. */
  MERIDIAN_TLS_CA: z.string().min(1).optional(),
  /**
   * The secret every process of a cluster shares: service tokens derived from it authenticate
   * the replica protocol both ways (libs/auth service-tokens.ts). Required in a cluster.
   */
  MERIDIAN_CLUSTER_SECRET: z.string().min(32, 'must be at least 32 characters (openssl rand -base64 32 makes one)').optional(),
  /**
   * The control plane's admin API (http://HOST:PORT). Set, the region relays its outbox there and
   * sends heartbeats; unset, writes wait in the outbox until it is set.
   */
  MERIDIAN_CONTROL_PLANE: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /**
   * OpenTelemetry's standard variable: the OTLP/HTTP endpoint (http://collector:4318) that spans
   * are exported to. Unset: no tracing at all.
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL (OTLP over HTTP)' }).optional(),
  /**
   * With tracing on: the share of pulls (GET and HEAD) traced, and the most traced in a second of
   * a gateway process; pulls are too many to trace each without slowing them.
   */
  MERIDIAN_TRACE_READ_RATIO: z.coerce.number({ error: 'expected a number from 0 to 1' }).min(0, { error: 'expected a number from 0 to 1' }).max(1, { error: 'expected a number from 0 to 1' }).default(0.01),
  MERIDIAN_TRACE_READS_PER_SECOND: wholeNumber(0, 100_000).default(1),
  /**
   * With tracing on: the most pushes and deletes (any request but GET and HEAD) traced in a
   * second of a gateway process. A traced push is traced through to every region; one more costs
   * every request in flight beside it (libs/telemetry sdk.ts).
   */
  MERIDIAN_TRACE_WRITES_PER_SECOND: wholeNumber(0, 100_000).default(10),
  /**
   * Whether /v2 asks for credentials (the Docker token flow, or Basic). On unless turned off: a
   * registry anyone who reaches its port may write to is for throwaway use only, and the start
   * says so loudly.
   */
  MERIDIAN_AUTH: oneOf(['on', 'off']).default('on'),
  /**
   * The password of the administrator `admin`, with MERIDIAN_AUTH=on. Set, it is (re)applied at
   * every start; unset, one is made once and written to <data dir>/admin-password (mode 0600).
   */
  MERIDIAN_ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  /** The `service` of the token flow: the audience access tokens are issued for. */
  MERIDIAN_AUTH_SERVICE: z.string().regex(/^[A-Za-z0-9.:_-]{1,128}$/, { error: 'expected 1 to 128 of letters, digits and . : _ -' }).default('meridian'),
  /**
   * The token endpoint clients are sent to (`realm` of the challenge). Unset: this gateway's
   * own /oauth2/token, at the address the client used (its Host header).
   */
  MERIDIAN_AUTH_REALM: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /**
   * In a cluster with MERIDIAN_AUTH=on: how often the region copies the cluster's identities and
   * key set from the control plane. A token disabled there is refused here within about this
   * long (plus the access tokens' lifetime, for those already issued).
   */
  MERIDIAN_IDENTITY_SYNC_SECONDS: wholeNumber(1, 3600).default(10),
  /** How long an access token lives; clients fetch a new one when it has expired. */
  MERIDIAN_AUTH_TOKEN_SECONDS: wholeNumber(30, 3600).default(300),
  /**
   * With MERIDIAN_AUTH=on: how often the region's signing key is replaced by a new one (hours,
   * fractions allowed). The replaced key stays in the region's and the cluster's key set until
   * every token it signed has expired.
   */
  MERIDIAN_SIGNING_KEY_ROTATION_HOURS: z.coerce.number({ error: 'expected a number of hours' }).positive('must be more than 0').max(8760, 'must be at most 8760 (a year)').default(24),
  /**
   * With MERIDIAN_AUTH=on: whether a request without credentials may pull (manifests, blobs, tags,
   * referrers) from any repository. Push, delete and `_catalog` still need credentials. A setting
   * of each region (each of its gateways), in a cluster too.
   */
  MERIDIAN_ANONYMOUS_PULL: oneOf(['on', 'off']).default('off'),
  /**
   * With MERIDIAN_AUTH=on: failed sign-ins one identity name, and one client address, may have
   * within the window; further attempts are refused with 429, without their password being
   * checked, until the window ends. Counted in the region's database, by every gateway together.
   */
  MERIDIAN_SIGN_IN_FAILURES_PER_NAME: wholeNumber(1).default(10),
  MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS: wholeNumber(1).default(50),
  MERIDIAN_SIGN_IN_WINDOW_SECONDS: wholeNumber(1, 86_400).default(300),
  /**
   * Proxies in front of the gateway (addresses and ranges, comma-separated; the cluster's router
   * among them): a request whose TCP peer is one of them counts as coming from the nearest
   * X-Forwarded-For address none of them owns, for sign-in limits and the audit log. Unset:
   * every request counts as coming from its TCP peer, whatever its X-Forwarded-For says.
   */
  MERIDIAN_TRUSTED_PROXIES: addressRanges,
  LOG_LEVEL: oneOf(LOG_LEVELS).default('info'),
}).superRefine((e, ctx) => {
  if (Boolean(e.MERIDIAN_TLS_CERT) !== Boolean(e.MERIDIAN_TLS_KEY)) {
    const missing = e.MERIDIAN_TLS_CERT ? 'MERIDIAN_TLS_KEY' : 'MERIDIAN_TLS_CERT';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'required with the other of MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY: set both to serve HTTPS, or neither' });
  }
  if (!e.MERIDIAN_CLUSTER_SECRET && (e.MERIDIAN_GRPC_PORT !== undefined || e.MERIDIAN_CONTROL_PLANE)) {
    ctx.addIssue({ code: 'custom', path: ['MERIDIAN_CLUSTER_SECRET'], message: 'required for a region of a cluster (MERIDIAN_GRPC_PORT or MERIDIAN_CONTROL_PLANE set): the secret every process of the cluster shares, at least 32 characters (openssl rand -base64 32 makes one)' });
  }
});

export interface GatewayConfig {
  host: string;
  port: number;
  databaseUrl: string;
  databasePoolSize: number;
  workers: number;
  dataDir: string;
  region: string;
  storageDriver: 'filesystem';
  directWrites: boolean;
  uploadSecret?: string;
  uploadMaxIdleMs: number;
  /** 0: the audit log is kept for good. */
  auditRetentionDays: number;
  cacheEntries: number;
  shutdownGraceMs: number;
  idleTimeoutMs: number;
  grpc?: { host: string; port: number };
  /** Paths of the PEM certificate and key, when the gateway (and its replica server) serve TLS. */
  tls?: { certFile: string; keyFile: string };
  /** Path of the PEM authority the replica clients trust, when they speak TLS. */
  tlsCaFile?: string;
  /** The cluster's shared secret (service tokens of the replica protocol); set whenever grpc or controlPlaneUrl is. */
  clusterSecret?: string;
  controlPlaneUrl?: string;
  /** Where spans are exported (OTLP/HTTP), when tracing is on. */
  otlpEndpoint?: string;
  traceReadRatio: number;
  /** Traced reads at most per second of each gateway process. */
  traceReadsPerSecond: number;
  /** Traced writes (pushes, deletes) at most per second of each gateway process. */
  traceWritesPerSecond: number;
  /** Proxies whose X-Forwarded-For is believed, as address ranges (CIDR). */
  trustedProxies: string[];
  /** Identity and access; undefined with MERIDIAN_AUTH=off. */
  auth?: AuthConfig;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
}

export interface AuthConfig {
  adminPassword?: string;
  service: string;
  realm?: string;
  tokenLifetimeSeconds: number;
  /** In a cluster: how often the cluster's identities are copied from the control plane. */
  identitySyncMs: number;
  /** How often the region's signing key is replaced (MERIDIAN_SIGNING_KEY_ROTATION_HOURS). */
  signingKeyRotationMs: number;
  signInLimits: SignInFailureLimits;
  /** Whether requests without credentials may pull any repository (and the token endpoint issues them pull-only tokens). */
  anonymousPull: boolean;
}

export function loadConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  // An empty or blank variable (`PORT=`) counts as unset: it takes the default, rather than
  // becoming 0 (a random port) or failing with a message about numbers.
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value?.trim() !== ''));
  const parsed = schema.safeParse(set);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${shown(String(issue.path[0]), set[String(issue.path[0])])}: ${issue.message}`);
    const advice = problems.length === 1 ? 'Set it right, or unset it for its default.' : 'Set them right, or unset them for their defaults.';
    throw new StartupError(`invalid configuration: ${problems.join('; ')}. ${advice}`, { cause: parsed.error });
  }
  const e = parsed.data;
  return {
    host: e.HOST,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    workers: e.MERIDIAN_WORKERS,
    dataDir: path.resolve(e.MERIDIAN_DATA_DIR),
    region: e.MERIDIAN_REGION,
    storageDriver: e.MERIDIAN_STORAGE_DRIVER,
    directWrites: e.MERIDIAN_DIRECT_WRITES === 'true',
    ...(e.MERIDIAN_UPLOAD_SECRET ? { uploadSecret: e.MERIDIAN_UPLOAD_SECRET } : {}),
    uploadMaxIdleMs: e.MERIDIAN_UPLOAD_MAX_IDLE_HOURS * 3600_000,
    auditRetentionDays: e.MERIDIAN_AUDIT_RETENTION_DAYS,
    cacheEntries: e.MERIDIAN_CACHE_ENTRIES,
    shutdownGraceMs: e.MERIDIAN_SHUTDOWN_GRACE_SECONDS * 1000,
    idleTimeoutMs: e.MERIDIAN_IDLE_TIMEOUT_SECONDS * 1000,
    ...(e.MERIDIAN_GRPC_PORT !== undefined ? { grpc: { host: e.MERIDIAN_GRPC_HOST, port: e.MERIDIAN_GRPC_PORT } } : {}),
    ...(e.MERIDIAN_TLS_CERT && e.MERIDIAN_TLS_KEY ? { tls: { certFile: path.resolve(e.MERIDIAN_TLS_CERT), keyFile: path.resolve(e.MERIDIAN_TLS_KEY) } } : {}),
    ...(e.MERIDIAN_TLS_CA ? { tlsCaFile: path.resolve(e.MERIDIAN_TLS_CA) } : {}),
    ...(e.MERIDIAN_CLUSTER_SECRET ? { clusterSecret: e.MERIDIAN_CLUSTER_SECRET } : {}),
    ...(e.MERIDIAN_CONTROL_PLANE ? { controlPlaneUrl: e.MERIDIAN_CONTROL_PLANE.replace(/\/+$/, '') } : {}),
    ...(e.OTEL_EXPORTER_OTLP_ENDPOINT ? { otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT } : {}),
    traceReadRatio: e.MERIDIAN_TRACE_READ_RATIO,
    traceReadsPerSecond: e.MERIDIAN_TRACE_READS_PER_SECOND,
    traceWritesPerSecond: e.MERIDIAN_TRACE_WRITES_PER_SECOND,
    trustedProxies: parseCidrList(e.MERIDIAN_TRUSTED_PROXIES),
    ...(e.MERIDIAN_AUTH === 'on'
      ? {
          auth: {
            ...(e.MERIDIAN_ADMIN_PASSWORD ? { adminPassword: e.MERIDIAN_ADMIN_PASSWORD } : {}),
            service: e.MERIDIAN_AUTH_SERVICE,
            ...(e.MERIDIAN_AUTH_REALM ? { realm: e.MERIDIAN_AUTH_REALM } : {}),
            tokenLifetimeSeconds: e.MERIDIAN_AUTH_TOKEN_SECONDS,
            identitySyncMs: e.MERIDIAN_IDENTITY_SYNC_SECONDS * 1000,
            signingKeyRotationMs: Math.round(e.MERIDIAN_SIGNING_KEY_ROTATION_HOURS * 3_600_000),
            signInLimits: {
              perName: e.MERIDIAN_SIGN_IN_FAILURES_PER_NAME,
              perAddress: e.MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS,
              windowSeconds: e.MERIDIAN_SIGN_IN_WINDOW_SECONDS,
            },
            anonymousPull: e.MERIDIAN_ANONYMOUS_PULL === 'on',
          },
        }
      : {}),
    logLevel: e.LOG_LEVEL,
  };
}

/** A variable and its value for a message; a secret's value is never shown, a URL's password is masked. */
function shown(name: string, value: string | undefined): string {
  if (value === undefined) return name;
  if (name === 'MERIDIAN_UPLOAD_SECRET' || name === 'MERIDIAN_ADMIN_PASSWORD' || name === 'MERIDIAN_CLUSTER_SECRET') return `${name} (${value.length} characters)`;
  // A malformed URL cannot be masked, and may hold a password: it is not shown at all.
  if (name === 'DATABASE_URL') return maskPassword(value) === undefined ? name : `${name}=${maskPassword(value)}`;
  return `${name}=${JSON.stringify(value)}`;
}

/** Whether a start failure prints its stack: at LOG_LEVEL=debug or trace, even when the config itself is bad. */
export function wantsStackTraces(env: NodeJS.ProcessEnv): boolean {
  return env.LOG_LEVEL === 'debug' || env.LOG_LEVEL === 'trace';
}

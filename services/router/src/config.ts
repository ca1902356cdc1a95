import { CLUSTER_SECRET_MIN_LENGTH, parseCidrList } from '@meridian/auth';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { RegionNameSchema } from '@meridian/proto/jobs';
import { LocationTableSchema, type LocationRange } from './locations/client-locator.js';

/**
 * An operator's mistake found while starting (a bad variable, an unreadable location table, a
 * port in use): main.ts prints its one line, which names the variable, without a stack.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

const wholeNumber = (min: number, max: number) => {
  const error = `expected a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};
const seconds = (max: number) => {
  const error = `expected a number of seconds above 0, at most ${max}`;
  return z.coerce.number({ error }).positive({ error }).max(max, { error });
};

/**
 * The router's whole configuration, from the environment (CONTRIBUTING.md, 'Configuration').
 * `loadConfig` is called once, from main.ts; nothing else reads process.env. A bad value stops
 * the start naming its variable; an empty variable counts as unset.
 */
const schema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: wholeNumber(0, 65535).default(5300),
  /**
   * Router processes sharing the port (node:cluster), each a whole router that reads the region
   * list and probes the regions itself. 1 runs a single process without a supervisor.
   */
  MERIDIAN_WORKERS: wholeNumber(1, 64).default(availableParallelism()),
  /** Where the region list comes from. No default: a router without regions has nowhere to send anyone. */
  /**
   * The secret every process of the cluster shares: calls to the control plane carry a service
   * token signed with it, which a control plane with MERIDIAN_AUTH=on requires.
   */
  MERIDIAN_CLUSTER_SECRET: z.string().min(CLUSTER_SECRET_MIN_LENGTH, `must be at least ${CLUSTER_SECRET_MIN_LENGTH} characters`).optional(),
  MERIDIAN_CONTROL_PLANE: z.url({
    protocol: /^https?$/,
    error: (issue) => (issue.input === undefined ? 'required: the control plane admin API URL, e.g. http://127.0.0.1:5100' : 'expected an http:// or https:// URL'),
  }),
  /** How often the region list is read again from the control plane. */
  MERIDIAN_ROUTER_REGION_REFRESH_SECONDS: seconds(3600).default(5),
  /** Time between two /readyz probes of one region. */
  MERIDIAN_ROUTER_PROBE_INTERVAL_SECONDS: seconds(3600).default(1),
  /** How long one probe may take before it counts as failed. */
  MERIDIAN_ROUTER_PROBE_TIMEOUT_SECONDS: seconds(60).default(1),
  /** Failed probes in a row that take a healthy region out of routing. */
  MERIDIAN_ROUTER_UNHEALTHY_AFTER: wholeNumber(1, 100).default(3),
  /** Successful probes in a row that put an unhealthy region back. */
  MERIDIAN_ROUTER_HEALTHY_AFTER: wholeNumber(1, 100).default(2),
  /** The location table: a JSON file of `[{"cidr","lat","lon","name"?}]`. */
  MERIDIAN_ROUTER_LOCATIONS_FILE: z.string().min(1).optional(),
  /** The location table itself, as JSON (instead of the file). */
  MERIDIAN_ROUTER_LOCATIONS: z.string().min(1).optional(),
  /** Proxies (address ranges, comma-separated) whose X-Forwarded-For is believed. */
  MERIDIAN_ROUTER_TRUSTED_PROXIES: z.string().default(''),
  /** Clients the location table does not place are taken to be at this region's place. */
  MERIDIAN_ROUTER_DEFAULT_REGION: RegionNameSchema.optional(),
  /** How long connecting to a region may take; a region that does not accept in time is failed over. */
  MERIDIAN_ROUTER_CONNECT_TIMEOUT_SECONDS: seconds(300).default(2),
  /** How long a region may keep a proxied request waiting for its answer, or between two pieces of it. */
  MERIDIAN_ROUTER_UPSTREAM_TIMEOUT_SECONDS: seconds(86_400).default(300),
  /**
   * Connections to each region that carry pipelined requests (manifest GETs, the base endpoint's
   * GET, HEADs), at least: requests are spread among them, so that a region whose worker
   * processes accept connections themselves has routed traffic on more than one of them. More
   * are opened while all are full.
   */
  MERIDIAN_ROUTER_PIPELINED_CONNECTIONS: wholeNumber(1, 64).default(4),
  /**
   * How long the oldest request on a pipelined connection may go unanswered before the requests
   * behind it are sent again on connections of their own. A region answers a manifest it holds in
   * about a millisecond; one it first reads from a peer takes a round trip between regions or more.
   */
  MERIDIAN_ROUTER_PIPELINE_STALL_SECONDS: seconds(3600).default(0.25),
  /**
   * Memory for pipelined answers that clients read slower than their regions gave them, for the
   * whole process, in MiB: past it, the clients holding the most are disconnected. At least one
   * manifest's worth (MAX_MANIFEST_BYTES, 4 MiB).
   */
  MERIDIAN_ROUTER_SLOW_CLIENT_BUFFER_MIB: wholeNumber(4, 65_536).default(64),
  /** A client that takes none of an answer held for it for this long is disconnected, and the answer dropped. */
  MERIDIAN_ROUTER_CLIENT_WRITE_TIMEOUT_SECONDS: seconds(3600).default(30),
  /** A client connection with no bytes moving either way for this long is closed. */
  MERIDIAN_IDLE_TIMEOUT_SECONDS: seconds(86_400).default(300),
  /** How long SIGTERM waits for in-flight requests. */
  MERIDIAN_SHUTDOWN_GRACE_SECONDS: seconds(3600).default(30),
  /** PEM files of the certificate (chain) and key: set both, and the router serves HTTPS (TLS 1.2 at least). */
  MERIDIAN_TLS_CERT: z.string().min(1).optional(),
  MERIDIAN_TLS_KEY: z.string().min(1).optional(),
  /** A PEM file of an authority the router trusts besides the system's, for the control plane and the regions (probes, proxied requests). */
  MERIDIAN_TLS_CA: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).superRefine((e, ctx) => {
  if (Boolean(e.MERIDIAN_TLS_CERT) !== Boolean(e.MERIDIAN_TLS_KEY)) {
    const missing = e.MERIDIAN_TLS_CERT ? 'MERIDIAN_TLS_KEY' : 'MERIDIAN_TLS_CERT';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'required with the other of MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY: set both to serve HTTPS, or neither' });
  }
});

export interface RouterConfig {
  host: string;
  port: number;
  /** Processes serving the port (MERIDIAN_WORKERS); 1 is a single process without a supervisor. */
  workers: number;
  controlPlaneUrl: string;
  /** Signs the router's reads of the region list (MERIDIAN_CLUSTER_SECRET). */
  clusterSecret?: string;
  regionRefreshMs: number;
  probe: { intervalMs: number; timeoutMs: number; unhealthyAfter: number; healthyAfter: number };
  locations: LocationRange[];
  trustedProxies: string[];
  defaultRegion?: string;
  connectTimeoutMs: number;
  upstreamTimeoutMs: number;
  /** Connections per region for pipelined requests, at least (MERIDIAN_ROUTER_PIPELINED_CONNECTIONS). */
  pipelinedConnections: number;
  pipelineStallMs: number;
  /** The process's budget for answers held for slow clients (MERIDIAN_ROUTER_SLOW_CLIENT_BUFFER_MIB), in bytes. */
  slowClientBufferBytes: number;
  clientWriteTimeoutMs: number;
  idleTimeoutMs: number;
  shutdownGraceMs: number;
  /** Paths of the PEM certificate and key, when the router serves HTTPS. */
  tls?: { certFile: string; keyFile: string };
  /** Path of a PEM authority trusted besides the system's, for the control plane and the regions. */
  tlsCaFile?: string;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
}

export function loadConfig(env: NodeJS.ProcessEnv, cwd = process.cwd()): RouterConfig {
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value?.trim() !== ''));
  const parsed = schema.safeParse(set);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${String(issue.path[0])}: ${issue.message}`);
    throw new StartupError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  let trustedProxies: string[];
  try {
    trustedProxies = parseCidrList(e.MERIDIAN_ROUTER_TRUSTED_PROXIES);
  } catch (err) {
    throw new StartupError(`invalid configuration: MERIDIAN_ROUTER_TRUSTED_PROXIES: ${(err as Error).message}`);
  }
  return {
    host: e.HOST,
    port: e.PORT,
    workers: e.MERIDIAN_WORKERS,
    controlPlaneUrl: e.MERIDIAN_CONTROL_PLANE.replace(/\/+$/, ''),
    ...(e.MERIDIAN_CLUSTER_SECRET ? { clusterSecret: e.MERIDIAN_CLUSTER_SECRET } : {}),
    regionRefreshMs: e.MERIDIAN_ROUTER_REGION_REFRESH_SECONDS * 1000,
    probe: {
      intervalMs: e.MERIDIAN_ROUTER_PROBE_INTERVAL_SECONDS * 1000,
      timeoutMs: e.MERIDIAN_ROUTER_PROBE_TIMEOUT_SECONDS * 1000,
      unhealthyAfter: e.MERIDIAN_ROUTER_UNHEALTHY_AFTER,
      healthyAfter: e.MERIDIAN_ROUTER_HEALTHY_AFTER,
    },
    locations: loadLocations(e.MERIDIAN_ROUTER_LOCATIONS_FILE, e.MERIDIAN_ROUTER_LOCATIONS, cwd),
    trustedProxies,
    ...(e.MERIDIAN_ROUTER_DEFAULT_REGION ? { defaultRegion: e.MERIDIAN_ROUTER_DEFAULT_REGION } : {}),
    connectTimeoutMs: e.MERIDIAN_ROUTER_CONNECT_TIMEOUT_SECONDS * 1000,
    upstreamTimeoutMs: e.MERIDIAN_ROUTER_UPSTREAM_TIMEOUT_SECONDS * 1000,
    pipelinedConnections: e.MERIDIAN_ROUTER_PIPELINED_CONNECTIONS,
    pipelineStallMs: e.MERIDIAN_ROUTER_PIPELINE_STALL_SECONDS * 1000,
    slowClientBufferBytes: e.MERIDIAN_ROUTER_SLOW_CLIENT_BUFFER_MIB * 1024 * 1024,
    clientWriteTimeoutMs: e.MERIDIAN_ROUTER_CLIENT_WRITE_TIMEOUT_SECONDS * 1000,
    idleTimeoutMs: e.MERIDIAN_IDLE_TIMEOUT_SECONDS * 1000,
    shutdownGraceMs: e.MERIDIAN_SHUTDOWN_GRACE_SECONDS * 1000,
    ...(e.MERIDIAN_TLS_CERT && e.MERIDIAN_TLS_KEY ? { tls: { certFile: path.resolve(cwd, e.MERIDIAN_TLS_CERT), keyFile: path.resolve(cwd, e.MERIDIAN_TLS_KEY) } } : {}),
    ...(e.MERIDIAN_TLS_CA ? { tlsCaFile: path.resolve(cwd, e.MERIDIAN_TLS_CA) } : {}),
    logLevel: e.LOG_LEVEL,
  };
}

/** The location table from the file or the variable (not both); an empty table without either. */
function loadLocations(file: string | undefined, inline: string | undefined, cwd: string): LocationRange[] {
  if (file !== undefined && inline !== undefined) {
    throw new StartupError('invalid configuration: MERIDIAN_ROUTER_LOCATIONS_FILE and MERIDIAN_ROUTER_LOCATIONS are both set; set one of them');
  }
  const [variable, text] = file !== undefined ? ['MERIDIAN_ROUTER_LOCATIONS_FILE', readTable(file, cwd)] : ['MERIDIAN_ROUTER_LOCATIONS', inline];
  if (text === undefined) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new StartupError(`invalid configuration: ${variable}: not JSON (${(err as Error).message})`);
  }
  const table = LocationTableSchema.safeParse(json);
  if (!table.success) {
    const problems = table.error.issues.map((issue) => `${issue.path.length > 0 ? `row ${issue.path.join('.')}` : 'the table'}: ${issue.message}`);
    throw new StartupError(`invalid configuration: ${variable}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`);
  }
  return table.data;
}

function readTable(file: string, cwd: string): string {
  const resolved = path.resolve(cwd, file);
  try {
    return readFileSync(resolved, 'utf8');
  } catch (err) {
    throw new StartupError(`invalid configuration: MERIDIAN_ROUTER_LOCATIONS_FILE: cannot read ${resolved} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

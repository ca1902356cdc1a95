import path from 'node:path';
import { availableParallelism } from 'node:os';
import { z } from 'zod';

/**
 * The gateway's whole configuration, from the environment (CONTRIBUTING.md, 'Configuration').
 * `loadConfig` is called once, from main.ts; nothing else reads process.env. A bad value stops
 * the start naming its key.
 */
const schema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(5000),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/meridian'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(16),
  /**
   * Gateway processes sharing the port (node:cluster); each is a full gateway of the region.
   * 1 runs a single process without a supervisor.
   */
  MERIDIAN_WORKERS: z.coerce.number().int().min(1).max(64).default(availableParallelism()),
  MERIDIAN_DATA_DIR: z.string().min(1).default('.meridian/data'),
  MERIDIAN_REGION: z.string().regex(/^[a-z0-9-]{1,63}$/).default('local'),
  MERIDIAN_STORAGE_DRIVER: z.enum(['filesystem']).default('filesystem'),
  /**
   * Whether large blob writes bypass the page cache (O_DIRECT) where the filesystem allows it:
   * faster pushes on virtual machines, and pushes that do not evict what pulls are reading.
   */
  MERIDIAN_DIRECT_WRITES: z.enum(['true', 'false']).default('true'),
  /**
   * Signs upload-session state in Location URLs. Every gateway of a region must share it
   * (Distribution's handlers/app.go warns why); when unset, one is created once in the data
   * directory, which the region's gateways share.
   */
  MERIDIAN_UPLOAD_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Upload sessions idle for longer than this are purged. */
  MERIDIAN_UPLOAD_MAX_IDLE_HOURS: z.coerce.number().positive().default(24),
  /** Entries in the in-memory manifest and blob-existence caches. */
  MERIDIAN_CACHE_ENTRIES: z.coerce.number().int().min(0).default(50_000),
  /** How long SIGTERM waits for in-flight requests before closing connections. */
  MERIDIAN_SHUTDOWN_GRACE_SECONDS: z.coerce.number().positive().default(30),
  /**
   * A connection that has sent and received nothing for this long is closed, so a stalled client
   * cannot hold an upload session's lock, or a pull's read buffers, for ever. A slow link that
   * keeps moving bytes is never cut.
   */
  MERIDIAN_IDLE_TIMEOUT_SECONDS: z.coerce.number().positive().default(300),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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
  cacheEntries: number;
  shutdownGraceMs: number;
  idleTimeoutMs: number;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
}

export function loadConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  // An empty variable (`PORT=`) counts as unset: it takes the default, rather than becoming 0
  // (a random port) or failing with a message about numbers.
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
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    workers: e.MERIDIAN_WORKERS,
    dataDir: path.resolve(e.MERIDIAN_DATA_DIR),
    region: e.MERIDIAN_REGION,
    storageDriver: e.MERIDIAN_STORAGE_DRIVER,
    directWrites: e.MERIDIAN_DIRECT_WRITES === 'true',
    ...(e.MERIDIAN_UPLOAD_SECRET ? { uploadSecret: e.MERIDIAN_UPLOAD_SECRET } : {}),
    uploadMaxIdleMs: e.MERIDIAN_UPLOAD_MAX_IDLE_HOURS * 3600_000,
    cacheEntries: e.MERIDIAN_CACHE_ENTRIES,
    shutdownGraceMs: e.MERIDIAN_SHUTDOWN_GRACE_SECONDS * 1000,
    idleTimeoutMs: e.MERIDIAN_IDLE_TIMEOUT_SECONDS * 1000,
    logLevel: e.LOG_LEVEL,
  };
}

import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { request } from 'undici';
import { startGatewayProcess } from '../../libs/testkit/src/gateway-process.js';
import { findFreePort, startDistributionRegistry } from '../support/distribution.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';


/**
 * The servers the bench drives. Each is just a URL and a pid (for CPU accounting) to the
 * scenarios; how it was started and how it stops stay in here.
 */

export type TargetName = 'meridian' | 'distribution' | 'nginx' | 'node-static';
export const targetNames: readonly TargetName[] = ['meridian', 'distribution', 'nginx', 'node-static'];

export interface RunningTarget {
  name: TargetName;
  label: string;
  /** Origin without a trailing slash, e.g. http://127.0.0.1:40123. */
  url: string;
  pid: number;
  /** `registry` speaks the distribution API; `static` serves the fixture files as plain paths. */
  kind: 'registry' | 'static';
  /** Whether Postgres CPU is part of this target's server CPU. */
  usesPostgres: boolean;
  /**
   * Sent with every request the scenarios make (through their connection pools and wrk): the
   * credentials of a registry that asks for them. The containerd push pattern's HEADs (node:http)
   * do not carry them; the auth bench does not run it.
   */
  requestHeaders?: Record<string, string>;
  /** Undefined while the process runs; once it has exited, how it exited and its last output. */
  exitReport(): string | undefined;
  stop(): Promise<void>;
}

async function waitUntilServing(url: string, service: ServiceProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const failure = service.failure();
    if (failure) throw new Error(`${failure} (before serving ${url})`);
    try {
      const res = await request(url, { method: 'GET' });
      await res.body.dump();
      return; // any HTTP answer means it is listening
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`did not serve ${url} within 20 s:\n${service.output()}`);
}

export interface DistributionOptions {
  binary: string;
  workDir: string;
}

/**
 * CNCF Distribution as Debian ships it, started by the same helper the e2e tests use. The
 * config mirrors Debian's and upstream's example (filesystem storage, in-memory blob
 * descriptor cache, deletes enabled) minus auth, with logging turned down so log writes do not
 * weigh on its figures.
 */
export async function startDistribution(opts: DistributionOptions): Promise<RunningTarget> {
  const registry = await startDistributionRegistry({
    workDir: opts.workDir,
    binary: opts.binary,
    blobDescriptorCache: true,
    // A fixed secret only silences the "generating a random secret" warning; single instance.
    httpSecret: 'meridian-bench-not-a-secret',
  });
  return {
    name: 'distribution',
    label: 'Distribution',
    url: registry.url,
    pid: registry.pid,
    kind: 'registry',
    usesPostgres: false,
    exitReport: registry.exitReport,
    stop: registry.stop,
  };
}

export interface NginxOptions {
  binary: string;
  workDir: string;
  /** Served as the document root: a file at rootDir/a/b is GET /a/b. */
  rootDir: string;
}

/**
 * nginx as the "plain static file server" yardstick for blob pulls: in the foreground, with
 * as many worker processes as Meridian runs by default (one per core), sendfile on, no access
 * log, and `reuseport`, so the kernel spreads connections over the workers as node:cluster's
 * round robin does for Meridian: without it, the bench's few keep-alive connections often all
 * landed on one worker, which then capped nginx at one core (about 2.8 GiB/s against 3.5–4.3
 * here, with the machine a quarter idle). Its CPU is the master's process tree, workers
 * included. Started as root, its workers
 * stay root (they would otherwise become `nobody`, who cannot read the bench's private temp
 * folder); it listens on loopback only.
 */
export async function startNginx(opts: NginxOptions): Promise<RunningTarget> {
  await mkdir(path.join(opts.workDir, 'temp'), { recursive: true });
  const port = await findFreePort();
  const configPath = path.join(opts.workDir, 'nginx.conf');
  const temp = path.join(opts.workDir, 'temp');
  await writeFile(
    configPath,
    `daemon off;
master_process on;
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes ${availableParallelism()};
pid ${path.join(opts.workDir, 'nginx.pid')};
error_log ${path.join(opts.workDir, 'error.log')} error;
events {
  worker_connections 1024;
}
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path ${temp}/client;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  server {
    listen 127.0.0.1:${port} reuseport;
    root ${opts.rootDir};
  }
}
`,
  );
  // -e keeps nginx from opening the compiled-in /var/log/nginx/error.log before reading the config.
  const service = startServiceProcess('nginx', opts.binary, ['-p', opts.workDir, '-c', configPath, '-e', path.join(opts.workDir, 'error.log')]);
  return staticTarget('nginx', 'nginx', port, service, () => waitUntilServing(`http://127.0.0.1:${port}/`, service));
}

/**
 * A static file server started as `service` on `port`, once `ready` resolves; stopped again
 * if it does not.
 */
async function staticTarget(name: TargetName, label: string, port: number, service: ServiceProcess, ready: () => Promise<void>): Promise<RunningTarget> {
  try {
    await ready();
  } catch (err) {
    await service.stop();
    throw err;
  }
  return {
    name,
    label,
    url: `http://127.0.0.1:${port}`,
    pid: service.child.pid!,
    kind: 'static',
    usesPostgres: false,
    exitReport: () => service.failure(),
    stop: () => service.stop(),
  };
}

export interface NodeStaticOptions {
  /** Served as the document root, the same files nginx serves. */
  rootDir: string;
}

/**
 * A bare node:http server sending the files with Meridian's own pull copy, in as many processes
 * as Meridian runs by default (node-static-server.ts): the ceiling for a Node server without
 * sendfile, and so the yardstick that splits Meridian's distance from nginx into what the
 * platform costs and what the registry costs.
 */
export async function startNodeStatic(opts: NodeStaticOptions): Promise<RunningTarget> {
  const port = await findFreePort();
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node-static-server.ts');
  const service = startServiceProcess('node-static', process.execPath, ['--import', 'tsx', script, opts.rootDir, String(port), String(availableParallelism())]);
  return staticTarget('node-static', 'Node static', port, service, async () => {
    // Every worker, not just the first, must be listening before connections are spread.
    const deadline = Date.now() + 20_000;
    while (!service.output().includes('listening')) {
      const failure = service.failure();
      if (failure) throw new Error(failure);
      if (Date.now() > deadline) throw new Error(`node-static did not listen within 20 s:\n${service.output()}`);
      await sleep(100);
    }
    await waitUntilServing(`http://127.0.0.1:${port}/`, service);
  });
}

export interface MeridianOptions {
  /** The bench database; dropped and recreated so every run starts clean. */
  databaseUrl: string;
  dataDir: string;
  /** What the report calls it (default "Meridian"). */
  label?: string;
  /** More environment for the gateway (the telemetry bench's OTLP endpoint). */
  env?: Record<string, string>;
}

/** Drops the bench's database, and creates it afresh unless `recreate` is false. */
async function resetDatabase(databaseUrl: string, recreate: boolean): Promise<void> {
  const target = new URL(databaseUrl);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`refusing odd database name ${JSON.stringify(name)}`);
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    if (recreate) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
}

export async function startMeridian(opts: MeridianOptions): Promise<RunningTarget> {
  await resetDatabase(opts.databaseUrl, true);
  await mkdir(opts.dataDir, { recursive: true });
  const gateway = await startGatewayProcess({
    databaseUrl: opts.databaseUrl,
    dataDir: opts.dataDir,
    port: 0,
    host: '127.0.0.1',
    // A loaded machine (other work on it) can take minutes to start one (fork, migrations, tsx loading).
    startTimeoutMs: 300_000,
    // Pinned, so a MERIDIAN_WORKERS in the caller's environment cannot make Meridian run more or
    // fewer processes than nginx and Node static, which run one per core.
    // Auth off unless a bench asks for it (`pnpm bench auth`): the other benches compare the
    // registry's own work with Distribution's, which runs without auth too.
    env: { LOG_LEVEL: 'warn', MERIDIAN_WORKERS: String(availableParallelism()), MERIDIAN_AUTH: 'off', ...opts.env },
  });
  // The helper drains the pipes; listening as well keeps the tail for when the gateway dies.
  let output = '';
  const keep = (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-8_000));
  gateway.child.stdout?.on('data', keep);
  gateway.child.stderr?.on('data', keep);
  const child = gateway.child;
  return {
    name: 'meridian',
    label: opts.label ?? 'Meridian',
    url: gateway.url.replace(/\/$/, ''),
    pid: gateway.pid,
    kind: 'registry',
    usesPostgres: true,
    exitReport: () =>
      child.exitCode === null && child.signalCode === null
        ? undefined
        : `process exited (${child.exitCode ?? child.signalCode}); last output: ${output.slice(-2_000)}`,
    stop: async () => {
      await gateway.stop('SIGTERM', 5_000);
      // Its rows point into a data directory the bench removes next; nothing should outlive the run.
      await resetDatabase(opts.databaseUrl, false);
    },
  };
}

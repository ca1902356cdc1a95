/**
 * A whole Meridian cluster on one machine, each part its own process on loopback: the control
 * plane, a replication worker, N regions (gateway + replica server + outbox relay), each
 * region with its own database and data directory, and the router, the one address that sends
 * each client to its nearest healthy region. `pnpm cluster up --regions N` starts what is
 * not running and keeps what is; `pnpm cluster down` stops it all. The state of the cluster is
 * `.meridian/cluster.json`, which `pnpm meridian` reads to find the control plane. With `--tls`
 * every process serves HTTPS (and its replica server TLS) with a certificate the cluster's own
 * authority signs, and trusts that authority (certificates.ts).
 *
 * A convenience for trying Meridian and for tests: every part is the same `node` entry point an
 * operator runs anywhere with its own environment.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTROL_PLANE_AUDIENCE, ServiceTokenIssuer } from '@meridian/auth';
import { createClusterHttp, type ClusterFetch } from '@meridian/proto/cluster-http';
import { clientCertDir, createCertificateAuthority, issueServerCertificate, type CertificateAuthority } from './certificates.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ClusterRegion {
  name: string;
  http: string;
  grpc: string;
  pid: number;
  lat: number;
  lon: number;
  databaseUrl: string;
  dataDir: string;
}

export interface ClusterState {
  controlPlane: string;
  controlPlanePid: number;
  workerPid: number;
  /** The worker's /metrics and health endpoints (http://HOST:PORT). */
  worker?: string;
  /** The global endpoint: the router, sending each client to its nearest healthy region. */
  router: string;
  routerPid: number;
  regions: ClusterRegion[];
  /** The per-region health dashboard, served by the control plane. */
  dashboard: string;
  /** The Prometheus `/metrics` URL of every process the cluster started. */
  metrics: string[];
  /** Whether the cluster asks for credentials (MERIDIAN_AUTH). */
  auth: boolean;
  /**
   * With auth on and no MERIDIAN_ADMIN_PASSWORD given: the file (mode 0600) holding the password
   * of the cluster's administrator `admin`, made by the control plane at its first start.
   * `pnpm meridian` reads it when talking to this cluster's control plane.
   */
  adminPasswordFile?: string;
  /** Every database of the cluster is named `<databasePrefix>_<part>`; a later `up` keeps it. */
  databasePrefix?: string;
  /** The BullMQ key prefix of the control plane and the worker, when not the services' own; a later `up` keeps it. */
  queuePrefix?: string;
  /** Whether every process serves TLS (`pnpm cluster up --tls`). */
  tls?: boolean;
  /**
   * With TLS: the cluster's authority (PEM), which signed every process's certificate. A client
   * trusts it; `pnpm meridian` reads it from here for this cluster's control plane.
   */
  caFile?: string;
  /** With TLS: a folder holding only `ca.crt`, what skopeo and podman take as `--cert-dir`. */
  certDir?: string;
}

export interface ClusterOptions {
  /** Where the state file, logs and region data go (default `.meridian` in the checkout). */
  home?: string;
  /** The Postgres server every part gets a database on (default postgres://postgres@127.0.0.1:5432). */
  postgresUrl?: string;
  redisUrl?: string;
  /** Gateway processes per region (default 1: the machine may have few cores). */
  gatewayWorkers?: number;
  /** Router processes (default 1, as for the gateways). */
  routerWorkers?: number;
  /** Prefix of every database name, so two clusters on one Postgres keep apart (default "meridian"). */
  databasePrefix?: string;
  /** BullMQ key prefix (default: the services' own). */
  queuePrefix?: string;
  logLevel?: string;
  /** Extra environment for every process. */
  env?: Record<string, string>;
  /**
   * Whether every process asks for credentials (MERIDIAN_AUTH=on, the default): identities live
   * in the control plane, every region copies them, and the processes sign their calls to the
   * control plane with a cluster secret made once in the home. `false` for a throwaway cluster.
   */
  auth?: boolean;
  /**
   * Whether every process serves HTTPS, and every region's replica server TLS, with a certificate
   * of its own signed by an authority made once into `<home>/cluster/tls`; every process trusts
   * that authority (MERIDIAN_TLS_CA). Default off.
   */
  tls?: boolean;
}

/** How long the cluster's authority and its certificates are valid: a year, then `pnpm cluster up --tls` after removing `<home>/cluster/tls`. */
const CERTIFICATE_DAYS = 365;

/** Regions get these names and places in order: far enough apart that nearest-region routing has work to do. */
const PLACES: ReadonlyArray<{ name: string; lat: number; lon: number }> = [
  { name: 'eu-west', lat: 53.35, lon: -6.26 },
  { name: 'us-east', lat: 38.9, lon: -77.04 },
  { name: 'ap-southeast', lat: 1.35, lon: 103.82 },
  { name: 'us-west', lat: 45.52, lon: -122.68 },
  { name: 'eu-central', lat: 50.11, lon: 8.68 },
  { name: 'ap-northeast', lat: 35.68, lon: 139.69 },
  { name: 'sa-east', lat: -23.55, lon: -46.63 },
  { name: 'af-south', lat: -33.92, lon: 18.42 },
];

const START_TIMEOUT_MS = 60_000;

/** Databases are `meridian_control`, `meridian_eu_west`, ... unless a prefix is given. */
const DEFAULT_DATABASE_PREFIX = 'meridian';

/**
 * Where the router's location table puts loopback clients: `127.0.N.0/24` a few kilometres from
 * the Nth place (in the order above), so a client that binds one of those source addresses (any
 * address of 127.0.0.0/8 can be bound on Linux) is near that region. Other loopback clients
 * (127.0.0.1) are not in the table and go to the first region, the router's default.
 */
export function clientAddressNear(region: string): string {
  const index = PLACES.findIndex((place) => place.name === region);
  if (index === -1) throw new Error(`no cluster region is named ${region}`);
  return `127.0.${index + 1}.10`;
}

const ROUTER_LOCATIONS = PLACES.map((place, index) => ({ cidr: `127.0.${index + 1}.0/24`, lat: place.lat + 0.05, lon: place.lon - 0.05, name: `near ${place.name}` }));

export class Cluster {
  readonly home: string;
  readonly stateFile: string;
  /** The cluster's processes as Prometheus file-based discovery reads them (deploy/prometheus/prometheus.yml). */
  readonly prometheusTargetsFile: string;
  private readonly postgresUrl: string;
  private readonly redisUrl: string;
  /** With auth on: how this tool proves itself to the control plane (registering regions). */
  private serviceTokens: ServiceTokenIssuer | undefined;

  constructor(private readonly options: ClusterOptions = {}) {
    this.home = path.resolve(options.home ?? path.join(REPO_ROOT, '.meridian'));
    this.stateFile = path.join(this.home, 'cluster.json');
    this.prometheusTargetsFile = path.join(this.home, 'prometheus-targets.json');
    this.postgresUrl = (options.postgresUrl ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
    this.redisUrl = options.redisUrl ?? 'redis://127.0.0.1:6379';
  }

  /** The state file, or undefined when no cluster was started here. */
  read(): ClusterState | undefined {
    if (!existsSync(this.stateFile)) return undefined;
    return JSON.parse(readFileSync(this.stateFile, 'utf8')) as ClusterState;
  }

  /**
   * Starts the control plane, `regions` regions and a worker, each unless it already runs, and
   * registers every region with the control plane. Resolves once every process answers. With
   * `worker: false` no worker is started (a test holding replication back); one running stays.
   * `cacheBytes` registers the regions it names as edge regions with that blob cache size.
   * `routerWorkers` overrides the cluster's own for a router this starts.
   */
  async up(regions: number, options: { worker?: boolean; cacheBytes?: Record<string, number>; routerWorkers?: number } = {}): Promise<ClusterState> {
    if (!Number.isInteger(regions) || regions < 1 || regions > PLACES.length) throw new Error(`--regions must be a whole number from 1 to ${PLACES.length}`);
    mkdirSync(path.join(this.home, 'cluster'), { recursive: true });
    const previous = this.read();
    const { databasePrefix, queuePrefix } = this.namesKeptFrom(previous);
    const queue: Record<string, string> = queuePrefix ? { MERIDIAN_QUEUE_PREFIX: queuePrefix } : {};
    const auth = this.options.auth ?? true;
    const tls = this.options.tls ?? false;
    if (previous && (previous.tls ?? false) !== tls && runningPids(previous).length > 0) {
      throw new Error(`the cluster in ${this.home} runs with TLS ${previous.tls ? 'on' : 'off'}: stop it first (pnpm cluster down), or run up ${previous.tls ? 'with' : 'without'} --tls`);
    }
    const scheme = tls ? 'https' : 'http';
    const authority = tls ? await this.authority() : undefined;
    const state: ClusterState = {
      controlPlane: '', controlPlanePid: 0, workerPid: 0, router: '', routerPid: 0, regions: [], dashboard: '', metrics: [], auth, tls, databasePrefix,
      ...(queuePrefix ? { queuePrefix } : {}),
      ...(authority ? { caFile: authority.caFile, certDir: await clientCertDir(authority, path.join(this.home, 'cluster', 'tls', 'client')) } : {}),
    };
    // Each process's certificate and key, and the authority it trusts for every other one.
    const served = async (part: string): Promise<Record<string, string>> => {
      if (!authority) return {};
      const own = await this.certificateOf(authority, part);
      return { MERIDIAN_TLS_CERT: own.certFile, MERIDIAN_TLS_KEY: own.keyFile, MERIDIAN_TLS_CA: authority.caFile };
    };
    // This tool's own calls (readiness, registering regions) trust the authority as the processes do.
    const clusterHttp = createClusterHttp(authority ? { ca: readFileSync(authority.caFile) } : {});
    try {
      // Every process gets the same switch, and with auth on the same secret.
      // `pnpm cluster` registers the regions as the CLI would, signing with the cluster secret.
      this.serviceTokens = new ServiceTokenIssuer(this.clusterSecret(), 'cli');
      const access: Record<string, string> = { MERIDIAN_AUTH: auth ? 'on' : 'off' };
      const controlPlaneDataDir = path.join(this.home, 'cluster', 'control-plane');
      const givenPassword = this.options.env?.MERIDIAN_ADMIN_PASSWORD ?? process.env.MERIDIAN_ADMIN_PASSWORD;
      if (auth && !givenPassword) state.adminPasswordFile = path.join(controlPlaneDataDir, 'admin-password');

      if (previous && isAlive(previous.controlPlanePid)) {
        state.controlPlane = previous.controlPlane;
        state.controlPlanePid = previous.controlPlanePid;
      } else {
        const port = previous ? portOf(previous.controlPlane) : await freePort();
        state.controlPlane = `${scheme}://127.0.0.1:${port}`;
        state.controlPlanePid = this.spawnPart('control-plane', 'services/control-plane/src/main.ts', {
          PORT: String(port),
          HOST: '127.0.0.1',
          CONTROL_PLANE_DATABASE_URL: `${this.postgresUrl}/${databasePrefix}_control`,
          REDIS_URL: this.redisUrl,
          MERIDIAN_DATA_DIR: controlPlaneDataDir,
          ...access,
          ...(await served('control-plane')),
          ...queue,
        });
      }
      this.write(state);
      await waitUntilReady(clusterHttp.fetch, `${state.controlPlane}/readyz`, state.controlPlanePid, this.logOf('control-plane'));

      for (const place of PLACES.slice(0, regions)) {
        const known = previous?.regions.find((region) => region.name === place.name);
        if (known && isAlive(known.pid)) {
          state.regions.push(known);
          continue;
        }
        const httpPort = known ? portOf(known.http) : await freePort();
        const grpcPort = known ? Number(known.grpc.split(':').pop()) : await freePort();
        const databaseUrl = `${this.postgresUrl}/${databasePrefix}_${place.name.replaceAll('-', '_')}`;
        const dataDir = path.join(this.home, 'cluster', place.name);
        const pid = this.spawnPart(place.name, 'services/gateway/src/main.ts', {
          PORT: String(httpPort),
          HOST: '127.0.0.1',
          DATABASE_URL: databaseUrl,
          MERIDIAN_DATA_DIR: dataDir,
          MERIDIAN_REGION: place.name,
          MERIDIAN_GRPC_PORT: String(grpcPort),
          MERIDIAN_GRPC_HOST: '127.0.0.1',
          MERIDIAN_CONTROL_PLANE: state.controlPlane,
          MERIDIAN_WORKERS: String(this.options.gatewayWorkers ?? 1),
          // The router proxies from loopback: each client's address is the one it forwards, for
          // sign-in limits and the audit log. (Everything here runs on loopback, so a local process
          // that calls a gateway directly could claim any address too.)
          MERIDIAN_TRUSTED_PROXIES: '127.0.0.1',
          ...access,
          ...(await served(place.name)),
        });
        state.regions.push({ name: place.name, http: `${scheme}://127.0.0.1:${httpPort}`, grpc: `127.0.0.1:${grpcPort}`, pid, lat: place.lat, lon: place.lon, databaseUrl, dataDir });
      }
      this.write(state);
      await Promise.all(state.regions.map((region) => waitUntilReady(clusterHttp.fetch, `${region.http}/readyz`, region.pid, this.logOf(region.name))));
      for (const region of state.regions) await this.register(clusterHttp.fetch, state.controlPlane, region, options.cacheBytes?.[region.name]);

      const workerLogStart = sizeOf(this.logOf('replication-worker'));
      const workerRuns = previous !== undefined && isAlive(previous.workerPid);
      if (workerRuns) {
        state.workerPid = previous.workerPid;
        if (previous.worker) state.worker = previous.worker;
      } else if (options.worker === false) {
        state.workerPid = 0;
      } else {
        const port = previous?.worker ? portOf(previous.worker) : await freePort();
        state.worker = `${scheme}://127.0.0.1:${port}`;
        state.workerPid = this.spawnPart('replication-worker', 'services/replication-worker/src/main.ts', {
          HOST: '127.0.0.1',
          PORT: String(port),
          REDIS_URL: this.redisUrl,
          MERIDIAN_CONTROL_PLANE: state.controlPlane,
          ...access,
          ...(await served('replication-worker')),
          ...queue,
        });
      }
      this.write(state);
      if (!workerRuns && state.workerPid !== 0) await waitForWorker(state.workerPid, this.logOf('replication-worker'), workerLogStart);

      if (previous?.routerPid && isAlive(previous.routerPid)) {
        state.router = previous.router;
        state.routerPid = previous.routerPid;
      } else {
        const port = previous?.router ? portOf(previous.router) : await freePort();
        const locations = path.join(this.home, 'cluster', 'router-locations.json');
        writeFileSync(locations, `${JSON.stringify(ROUTER_LOCATIONS, null, 2)}\n`);
        state.router = `${scheme}://127.0.0.1:${port}`;
        state.routerPid = this.spawnPart('router', 'services/router/src/main.ts', {
          PORT: String(port),
          HOST: '127.0.0.1',
          MERIDIAN_CONTROL_PLANE: state.controlPlane,
          MERIDIAN_ROUTER_LOCATIONS_FILE: locations,
          MERIDIAN_ROUTER_DEFAULT_REGION: PLACES[0]!.name,
          MERIDIAN_WORKERS: String(options.routerWorkers ?? this.options.routerWorkers ?? 1),
          ...access,
          ...(await served('router')),
        });
      }
      state.dashboard = `${state.controlPlane}/dashboard`;
      const scraped = scrapeTargets(state);
      state.metrics = scraped.map((target) => target.url);
      this.write(state);
      // A target group carries its scheme: with --tls every process answers HTTPS only.
      this.writeJson(this.prometheusTargetsFile, scraped.map(({ url, labels }) => ({ targets: [new URL(url).host], labels: { ...labels, __scheme__: new URL(url).protocol.slice(0, -1) } })));
      await waitUntilReady(clusterHttp.fetch, `${state.router}/readyz`, state.routerPid, this.logOf('router'));
      return state;
    } finally {
      await clusterHttp.close();
    }
  }

  /**
   * The database and queue prefixes of this `up`: those given, else those the cluster was started
   * with (its state file), else the defaults. A cluster whose parts were started on other prefixes
   * is refused, since its parts would no longer share one catalog and one queue.
   */
  private namesKeptFrom(previous: ClusterState | undefined): { databasePrefix: string; queuePrefix?: string } {
    // A state file from before the prefixes were recorded: its parts took the options given now.
    if (previous?.databasePrefix === undefined) {
      return { databasePrefix: this.options.databasePrefix ?? DEFAULT_DATABASE_PREFIX, ...(this.options.queuePrefix ? { queuePrefix: this.options.queuePrefix } : {}) };
    }
    const databasePrefix = this.options.databasePrefix ?? previous.databasePrefix;
    const queuePrefix = this.options.queuePrefix ?? previous.queuePrefix;
    if (databasePrefix !== previous.databasePrefix) {
      throw new Error(`the cluster in ${this.home} uses the database prefix ${previous.databasePrefix}: run up without --database-prefix, or give another cluster another --home`);
    }
    if (queuePrefix !== previous.queuePrefix) {
      throw new Error(`the cluster in ${this.home} uses the queue prefix ${previous.queuePrefix ?? 'of the services (bull)'}: run up without --queue-prefix, or give another cluster another --home`);
    }
    return { databasePrefix, ...(queuePrefix ? { queuePrefix } : {}) };
  }

  /** Stops every process of the cluster (SIGTERM, then SIGKILL after `graceMs`); data stays. False when the home holds no cluster. */
  async down(graceMs = 15_000): Promise<boolean> {
    const state = this.read();
    if (!state) return false;
    await stopProcesses(runningPids(state), graceMs);
    return true;
  }

  /**
   * Stops the router and starts it again with `workers` processes, the other parts running on (a
   * bench giving the router one core runs it as one process). Resolves once the new one answers.
   */
  async restartRouter(workers: number): Promise<ClusterState> {
    const state = this.read();
    if (!state?.routerPid) throw new Error(`no router was started in ${this.home}`);
    await stopProcesses([state.routerPid].filter(isAlive), 15_000);
    return this.up(state.regions.length, { worker: state.workerPid !== 0, routerWorkers: workers });
  }

  logOf(part: string): string {
    return path.join(this.home, 'cluster', `${part}.log`);
  }

  private spawnPart(part: string, entry: string, env: Record<string, string>): number {
    const log = openSync(this.logOf(part), 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, entry)], {
      cwd: REPO_ROOT,
      // Its own session: the cluster outlives the command that started it.
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, LOG_LEVEL: this.options.logLevel ?? 'info', MERIDIAN_CLUSTER_SECRET: this.clusterSecret(), ...this.options.env, ...env },
    });
    child.unref();
    return child.pid!;
  }

  /**
   * The secret every process of this cluster shares (service tokens of the replica protocol),
   * made once into `<home>/cluster/cluster-secret`, readable by its owner only, so parts started
   * later join the same cluster. Passed to each process in its environment, never printed.
   */
  clusterSecret(): string {
    const file = path.join(this.home, 'cluster', 'cluster-secret');
    if (!existsSync(file)) {
      try {
        writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        // Another `cluster up` made it first: theirs stands.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    return readFileSync(file, 'utf8').trim();
  }

  /**
   * The cluster's authority, made once into `<home>/cluster/tls` (its key readable by its owner
   * only) and kept, so processes started later are signed by the same one.
   */
  private async authority(): Promise<CertificateAuthority> {
    const dir = path.join(this.home, 'cluster', 'tls');
    const authority = { caFile: path.join(dir, 'ca.crt'), caKeyFile: path.join(dir, 'ca.key') };
    if (existsSync(authority.caFile) && existsSync(authority.caKeyFile)) return authority;
    const made = await createCertificateAuthority(dir, { days: CERTIFICATE_DAYS, name: 'Meridian cluster CA' });
    chmodSync(made.caKeyFile, 0o600);
    return made;
  }

  /** A part's certificate, issued once by the authority and kept with it. */
  private async certificateOf(authority: CertificateAuthority, part: string): Promise<{ certFile: string; keyFile: string }> {
    const dir = path.dirname(authority.caFile);
    const own = { certFile: path.join(dir, `${part}.crt`), keyFile: path.join(dir, `${part}.key`) };
    if (existsSync(own.certFile) && existsSync(own.keyFile)) return own;
    const issued = await issueServerCertificate(authority, dir, part, CERTIFICATE_DAYS);
    chmodSync(issued.keyFile, 0o600);
    return issued;
  }

  private async register(fetch: ClusterFetch, controlPlane: string, region: ClusterRegion, cacheBytes?: number): Promise<void> {
    const response = await fetch(`${controlPlane}/api/v1/regions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.serviceTokens ? { authorization: `Bearer ${await this.serviceTokens.token(CONTROL_PLANE_AUDIENCE)}` } : {}) },
      body: JSON.stringify({ name: region.name, http: region.http, grpc: region.grpc, lat: region.lat, lon: region.lon, ...(cacheBytes ? { cacheBytes } : {}) }),
    });
    // Already registered (a cluster brought up again): what it has stands.
    if (!response.ok && response.status !== 409) throw new Error(`registering ${region.name} failed: ${response.status} ${await response.text()}`);
    await response.body?.cancel();
  }

  private write(state: ClusterState): void {
    this.writeJson(this.stateFile, state);
  }

  private writeJson(file: string, value: unknown): void {
    const temporary = `${file}.${process.pid}`;
    writeFileSync(temporary, `${JSON.stringify(value, null, 2)}\n`);
    renameSync(temporary, file);
  }
}

/** Each process's /metrics, with the labels that say what it is even while it does not answer. */
function scrapeTargets(state: ClusterState): Array<{ url: string; labels: Record<string, string> }> {
  return [
    { url: `${state.controlPlane}/metrics`, labels: { service: 'control-plane' } },
    ...state.regions.map((region) => ({ url: `${region.http}/metrics`, labels: { service: 'gateway', region: region.name } })),
    // A worker started before it had a listener has no address to scrape.
    ...(state.worker ? [{ url: `${state.worker}/metrics`, labels: { service: 'replication-worker' } }] : []),
    ...(state.router ? [{ url: `${state.router}/metrics`, labels: { service: 'router' } }] : []),
  ];
}

/** The processes of `state` that are running. */
function runningPids(state: ClusterState): number[] {
  return [state.routerPid ?? 0, state.workerPid, ...state.regions.map((region) => region.pid), state.controlPlanePid].filter(isAlive);
}

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGTERM to each of `pids`, then SIGKILL to those still running after `graceMs`; resolves once all are gone. */
async function stopProcesses(pids: number[], graceMs: number): Promise<void> {
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(100);
  for (const pid of pids.filter(isAlive)) signal(pid, 'SIGKILL');
  while (pids.some(isAlive)) await sleep(50);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `url` until it answers 200; fails at once, naming the log, if the process dies first. */
async function waitUntilReady(fetch: ClusterFetch, url: string, pid: number, log: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!isAlive(pid)) throw new Error(`the process behind ${url} exited; see ${log}`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      async (response) => {
        await response.body?.cancel();
        return response.ok;
      },
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer ready within ${START_TIMEOUT_MS / 1000} s; see ${log}`);
    await sleep(200);
  }
}

function sizeOf(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/**
 * The worker serves no port: it counts as up once its log (past `from`, this start's part) says
 * it takes jobs.
 */
async function waitForWorker(pid: number, log: string, from: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!isAlive(pid)) throw new Error(`the replication worker exited; see ${log}`);
    const text = existsSync(log) ? readFileSync(log).subarray(from).toString('utf8') : '';
    if (text.includes('replication worker taking jobs')) return;
    if (Date.now() > deadline) throw new Error(`the replication worker did not start within ${START_TIMEOUT_MS / 1000} s; see ${log}`);
    await sleep(200);
  }
}

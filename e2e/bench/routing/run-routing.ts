/**
 * `pnpm bench routing`: what the router costs, on a cluster on this machine (`pnpm cluster`'s
 * Cluster: three regions and the router, each its own process on loopback). Every figure is
 * measured through the router and straight from the region it routes to, in interleaved rounds
 * (the order flips each round), and the median round is reported.
 *
 * - Large-blob pulls: the router proxies a blob GET to the region, which answers it with a 307 to
 *   itself, so the bytes should flow as fast as from the region itself (target: at least 0.95x).
 *   Pulled in pairs, one through the router and one straight from the region at the same time,
 *   the median pair's ratio reported (pullPair says why); and the 307 itself timed, through the
 *   router and from the region, which is what the router adds to a pull.
 * - Manifest GETs by tag (wrk, 64 connections): the router proxies them, so each costs the
 *   router's work on top of the region's (target: at least 0.8x the request rate, p99 at most
 *   2 ms more). At saturation p99 is mostly the queue, and follows the request rate; so the
 *   p99 is also measured at a fixed rate of about 1000 requests a second, arriving independently
 *   (random pauses: equal ones kept the 64 connections in step, and p99 was the time to work
 *   through a burst of 64), where it is the router's own time per request. Measured twice with
 *   --pin. Shared cores: router, region and wrk share the machine's cores, so every microsecond
 *   the router spends is taken from the gateway it measures; the router runs as the processes the
 *   region's one gateway process leaves (one on two cores), as one host running both would. Pinned: the region's gateway alone on CPU 1 in both runs, wrk on CPU 0, and in the
 *   routed run the router on CPU 0 beside wrk, as a global endpoint runs on machines of its own:
 *   the gateway has the same CPU in both runs, and the figure is what the router costs a client.
 *   The router has one core there, so it runs as one process, as its default (one per core) has
 *   it on a machine of one core: two processes time-sliced on one core beside wrk's threads spent
 *   1.0-3.5x (median 2.0) the router CPU per GET of one, and an answer that comes for the process
 *   not running waits for the other's turn.
 * - First byte of a blob the region must first fetch from a peer (a read-through fill) against
 *   one it holds (a local hit): fresh 1 MiB blobs pushed to the first region, each asked once of
 *   the second region (which lacks it) and once of the first, interleaved; medians.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Agent, interceptors, type Dispatcher } from 'undici';
import { MediaType } from '@meridian/oci';
import { BLOB_REDIRECT_HEADER } from '@meridian/proto/cluster-http';
import { OciTestClient, buildImage } from '@meridian/testkit';
import { withCluster } from '../bench-cluster.js';
import { processTree, readClockTicksPerSecond, startCpuMeter } from '../cpu.js';
import { runWrk } from '../wrk.js';
import type { LoadRunResult } from '../load-run.js';

const WRK = '/usr/bin/wrk';

interface Options {
  rounds: number;
  blobMiB: number;
  pulls: number;
  manifestSeconds: number;
  fills: number;
  routerWorkers: number;
  pin: boolean;
  pinnedRouterWorkers: number;
}

const usage = `Usage: pnpm bench routing [--quick] [--pin] [--rounds N] [--blob-mib N] [--pulls N] [--manifest-seconds N] [--router-workers N] [--pinned-router-workers N]

  --rounds N            interleaved rounds per figure, median reported (default 3, quick 1)
  --blob-mib N          size of the large blob in MiB (default 256, quick 32)
  --pulls N             pairs of pulls of it per round, one through the router and one direct at once (default 8, quick 2)
  --manifest-seconds N  length of each wrk run of manifest GETs (default 10, quick 2)
  --fills N             fresh blobs for the read-through first-byte figure (default 9, quick 3)
  --router-workers N    router processes (MERIDIAN_WORKERS; default the cores the region's one gateway process leaves, at least 1)
  --pin                 also measure manifest GETs pinned (taskset): the region's gateway alone on CPU 1 in
                        both runs, wrk on CPU 0, and in the routed run the router on CPU 0 too, as a global
                        endpoint on machines of its own; printed beside the shared-core figure. The router
                        is started again for it as --pinned-router-workers processes
  --pinned-router-workers N  router processes on its one core when pinned (default 1, what one per core gives)`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'blob-mib': { type: 'string' },
      pulls: { type: 'string' },
      'manifest-seconds': { type: 'string' },
      fills: { type: 'string' },
      'router-workers': { type: 'string' },
      'pinned-router-workers': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const whole = (value: string | undefined, fallback: number, name: string) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a whole number from 1`);
    return n;
  };
  const quick = values.quick;
  const options: Options = {
    rounds: whole(values.rounds, quick ? 1 : 3, 'rounds'),
    blobMiB: whole(values['blob-mib'], quick ? 32 : 256, 'blob-mib'),
    pulls: whole(values.pulls, quick ? 2 : 8, 'pulls'),
    manifestSeconds: whole(values['manifest-seconds'], quick ? 2 : 10, 'manifest-seconds'),
    fills: whole(values.fills, quick ? 3 : 9, 'fills'),
    // Router and gateway share this machine's cores, as an operator running both on one host
    // would share them: the router gets the cores the region's gateway (one process in the
    // bench's cluster) leaves. Its own default, one per core, is for a host of its own; here two
    // router processes beside the gateway and wrk on two cores spent 1.37x (64 connections) and
    // 1.53x (fixed rate) the router CPU per GET of one, and made the gateway's dearer too.
    routerWorkers: whole(values['router-workers'], Math.max(1, availableParallelism() - 1), 'router-workers'),
    pin: values.pin,
    pinnedRouterWorkers: whole(values['pinned-router-workers'], 1, 'pinned-router-workers'),
  };
  if (options.pin && availableParallelism() < 2) throw new Error('--pin needs two CPUs: one for the gateway, one for wrk and the router');
  return options;
}

/**
 * Pushes `bytes` random bytes as one blob, streamed as a chunked upload (POST, one PATCH, then
 * PUT with the digest hashed on the way), so the bench never holds the blob whole either.
 */
async function pushLargeBlob(dispatcher: Dispatcher, region: string, repository: string, bytes: number): Promise<string> {
  const opened = await dispatcher.request({ origin: region, path: `/v2/${repository}/blobs/uploads/`, method: 'POST' });
  await opened.body.dump();
  if (opened.statusCode !== 202) throw new Error(`POST upload: ${opened.statusCode}`);
  const hash = createHash('sha256');
  async function* pieces() {
    for (let sent = 0; sent < bytes; ) {
      const piece = randomBytes(Math.min(4 * 1024 * 1024, bytes - sent));
      hash.update(piece);
      sent += piece.length;
      yield piece;
    }
  }
  const session = new URL(String(opened.headers.location), region);
  const patched = await dispatcher.request({
    origin: session.origin,
    path: `${session.pathname}${session.search}`,
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${bytes - 1}`, 'content-length': String(bytes) },
    body: Readable.from(pieces()),
  });
  await patched.body.dump();
  if (patched.statusCode !== 202) throw new Error(`PATCH upload: ${patched.statusCode}`);
  const digest = `sha256:${hash.digest('hex')}`;
  const closing = new URL(String(patched.headers.location), region);
  closing.searchParams.set('digest', digest);
  const put = await dispatcher.request({ origin: closing.origin, path: `${closing.pathname}${closing.search}`, method: 'PUT', headers: { 'content-length': '0' } });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`PUT upload: ${put.statusCode}`);
  return digest;
}

/** Seconds one GET of the blob took (following a redirect), its bytes counted and dropped. */
async function pullSeconds(client: Dispatcher, base: string, blobPath: string, bytes: number): Promise<number> {
  const url = new URL(blobPath, base);
  const started = performance.now();
  const response = await client.request({ origin: url.origin, path: url.pathname, method: 'GET' });
  if (response.statusCode !== 200) throw new Error(`GET ${url}: ${response.statusCode}`);
  let received = 0;
  for await (const chunk of response.body) received += (chunk as Buffer).length;
  if (received !== bytes) throw new Error(`GET ${url}: ${received} bytes of ${bytes}`);
  return (performance.now() - started) / 1000;
}

/**
 * One pull through the router and one straight from the region, started together (which one is
 * asked first alternates with `routerFirst`), so that both meet the same machine: on shared cores
 * a burst of other work lasts seconds, and rounds of one path then the other measured it rather
 * than the redirect (the 3-round median of whole rounds swung 0.90-0.99x between runs of one
 * code). Started together, the router's pull lags by what the redirect costs and then shares the
 * bytes' bandwidth with the direct one, which finishes that much sooner: the ratio of their times
 * charges the redirect once against a pull, as two pulls of one path at a time did.
 */
async function pullPair(client: Dispatcher, router: string, region: string, blobPath: string, bytes: number, routerFirst: boolean): Promise<{ router: number; direct: number }> {
  const pull = (base: string) => pullSeconds(client, base, blobPath, bytes);
  const [first, second] = routerFirst ? [router, region] : [region, router];
  const [firstSeconds, secondSeconds] = await Promise.all([pull(first), pull(second)]);
  return routerFirst ? { router: firstSeconds, direct: secondSeconds } : { router: secondSeconds, direct: firstSeconds };
}

/**
 * Milliseconds until a blob GET's 307 has come whole (not followed): through the router (its
 * proxied GET to the region, which redirects), and asked of the region itself with the header the
 * router adds (the bench's loopback address is one the cluster's regions trust). The difference
 * is what the router adds to a pull.
 */
async function redirectMs(client: Dispatcher, base: string, blobPath: string, headers: Record<string, string>): Promise<number> {
  const url = new URL(blobPath, base);
  const started = performance.now();
  const response = await client.request({ origin: url.origin, path: url.pathname, method: 'GET', headers });
  await response.body.dump();
  if (response.statusCode !== 307) throw new Error(`GET ${url} (not following): ${response.statusCode}`);
  return performance.now() - started;
}

/** Milliseconds from sending a blob GET until the first byte of its body arrived; the rest is read and dropped. */
async function firstByteMs(client: Dispatcher, base: string, blobPath: string): Promise<number> {
  const url = new URL(blobPath, base);
  const started = performance.now();
  const response = await client.request({ origin: url.origin, path: url.pathname, method: 'GET' });
  if (response.statusCode !== 200) throw new Error(`GET ${url}: ${response.statusCode}`);
  let first: number | undefined;
  for await (const _chunk of response.body) first ??= performance.now();
  return (first ?? performance.now()) - started;
}

const TICKS_PER_SECOND = readClockTicksPerSecond();

type ManifestRun = LoadRunResult & { cpuMicrosPerRequest: Record<string, number> };

/**
 * A wrk run (on `cpus`, when given), and the CPU microseconds per request each of `pids`
 * (router, gateway) spent in it.
 */
async function manifestRun(url: string, seconds: number, workDir: string, pids: Record<string, number>, cpus?: string, pauseMs?: number): Promise<ManifestRun> {
  const options = { workDir, url, method: 'GET' as const, headers: { Accept: MediaType.OciManifest }, threads: 2, connections: 64, ...(cpus === undefined ? {} : { cpus }), ...(pauseMs === undefined ? {} : { pauseMs }) };
  await runWrk(WRK, { ...options, durationSeconds: 2 });
  const meters = Object.entries(pids).map(([name, pid]) => [name, startCpuMeter({ serverPid: pid, countPostgres: false, ticksPerSecond: TICKS_PER_SECOND })] as const);
  const result = await runWrk(WRK, { ...options, durationSeconds: seconds });
  const cpuMicrosPerRequest = Object.fromEntries(meters.map(([name, stop]) => [name, (stop().serverSeconds * 1e6) / Math.max(1, result.requests)]));
  const { socket, timeout, status } = result.errors;
  if (socket + timeout + status > 0) throw new Error(`wrk against ${url}: ${socket} socket errors, ${timeout} timeouts, ${status} bad statuses`);
  return { ...result, cpuMicrosPerRequest };
}

/** Moves every process (and thread) of the tree rooted at `pid` onto `cpus` (taskset syntax). */
function pinProcessTree(pid: number, cpus: string): void {
  for (const member of processTree(pid)) execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(member)], { stdio: 'ignore' });
}

/** The manifest figure of one placement: the median round of each path, their ratio and the CPU per request. */
function manifestFigure(placement: string, runs: { router: ManifestRun[]; direct: ManifestRun[] }): string {
  const pick = (list: ManifestRun[]): ManifestRun => list.find((run) => run.requestsPerSecond === median(list.map((r) => r.requestsPerSecond)))!;
  const [viaRouter, direct] = [pick(runs.router), pick(runs.direct)];
  const micros = (run: ManifestRun, name: string) => (run.cpuMicrosPerRequest[name] ?? 0).toFixed(0);
  return (
    `- manifest GET by tag, c=64, wrk, ${placement} (req/s): router (proxied) ${viaRouter.requestsPerSecond.toFixed(0)}, direct ${direct.requestsPerSecond.toFixed(0)}: ` +
    `${(viaRouter.requestsPerSecond / direct.requestsPerSecond).toFixed(2)}x (target >= 0.8); p50 ${viaRouter.latencyP50Ms.toFixed(2)} vs ${direct.latencyP50Ms.toFixed(2)} ms, ` +
    `p99 ${viaRouter.latencyP99Ms.toFixed(2)} vs ${direct.latencyP99Ms.toFixed(2)} ms: ${signed(viaRouter.latencyP99Ms - direct.latencyP99Ms)} ms (target <= +2 ms)\n` +
    `  - CPU per manifest GET in that round: through the router, router ${micros(viaRouter, 'router')} µs + gateway ${micros(viaRouter, 'gateway')} µs; ` +
    `direct, gateway ${micros(direct, 'gateway')} µs`
  );
}

/**
 * The manifest figure at a fixed rate, well below saturation: the p99 a client sees from the
 * router's own time per request, not from the queue that builds at saturation, where p99 mostly
 * follows the request rate.
 */
function fixedRateFigure(runs: { router: ManifestRun[]; direct: ManifestRun[] }): string {
  const pick = (list: ManifestRun[]): ManifestRun => list.find((run) => run.latencyP99Ms === median(list.map((r) => r.latencyP99Ms)))!;
  const [viaRouter, direct] = [pick(runs.router), pick(runs.direct)];
  return (
    `- manifest GET by tag at a fixed rate (c=64, each connection pausing a random ${FIXED_RATE_PAUSE_MS} ms on average after each answer, so requests arrive independently: about ${Math.round((64 * 1000) / FIXED_RATE_PAUSE_MS)} req/s, ` +
    `shared cores; median round by p99): router ${viaRouter.requestsPerSecond.toFixed(0)} req/s, direct ${direct.requestsPerSecond.toFixed(0)}; ` +
    `p50 ${viaRouter.latencyP50Ms.toFixed(2)} vs ${direct.latencyP50Ms.toFixed(2)} ms, p99 ${viaRouter.latencyP99Ms.toFixed(2)} vs ${direct.latencyP99Ms.toFixed(2)} ms: ` +
    `${signed(viaRouter.latencyP99Ms - direct.latencyP99Ms)} ms (the +2 ms target read below saturation)`
  );
}

/** The mean pause of each connection in the fixed-rate manifest figure: 64 connections, about 1000 requests a second. */
const FIXED_RATE_PAUSE_MS = 64;

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
}

function median(values: number[]): number {
  return percentile(values, 0.5);
}

function percentile(values: number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * share))]!;
}

/** Blob GETs whose 307 is timed (not followed), through the router and from the region, interleaved. */
const REDIRECT_SAMPLES = 200;

/** Runs `measure` for both paths, `rounds` times, the order flipping each round. */
async function interleaved<T>(rounds: number, measure: (via: 'router' | 'direct') => Promise<T>): Promise<{ router: T[]; direct: T[] }> {
  const results = { router: [] as T[], direct: [] as T[] };
  for (let round = 0; round < rounds; round++) {
    const order: Array<'router' | 'direct'> = round % 2 === 0 ? ['direct', 'router'] : ['router', 'direct'];
    for (const via of order) results[via].push(await measure(via));
  }
  return results;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2).filter((arg) => arg !== 'routing' && arg !== '--'));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const workDir = await mkdtemp(path.join(tmpdir(), 'meridian-bench-routing-'));
  // Follows the 307 to the region (the region's, relayed by the router), as registry clients do.
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  const client = agent.compose(interceptors.redirect({ maxRedirections: 1 }));
  try {
    await withCluster(
      3,
      async (state, cluster) => {
        // A client on 127.0.0.1 is not in the cluster's location table: the router sends it to
        // its default region, the first. That is the region measured directly.
        const region = state.regions[0]!;
        const bytes = options.blobMiB * 1024 * 1024;
        const digest = await pushLargeBlob(client, region.http, 'bench/routing', bytes);
        await new OciTestClient(region.http).pushImage('bench/routing', 'v1', buildImage());
        const blobPath = `/v2/bench/routing/blobs/${digest}`;
        const manifestPath = `/v2/bench/routing/manifests/v1`;
        const target = (via: 'router' | 'direct') => (via === 'router' ? state.router : region.http);

        say(
          `# pnpm bench routing (${new Date().toISOString()}): ${options.rounds} interleaved round(s), median; through the router ` +
            `(${options.routerWorkers} process(es)) to ${region.name} against ${region.name} directly; load average ${loadavg().map((load) => load.toFixed(1)).join(' ')}`,
        );
        say('');
        // Read the blob whole twice first, straight from the region: a blob just pushed is read
        // around the page cache once and through it (filling it) the next time (fs-writer.ts), and
        // whichever path a round ran first paid for that; the 3-round median swung from 0.83x to
        // 1.24x between runs of the same code. The figure is the redirect's cost, on a warm blob.
        for (let warm = 0; warm < 2; warm++) await pullSeconds(client, region.http, blobPath, bytes);
        const pairs: Array<{ router: number; direct: number }> = [];
        for (let pair = 0; pair < options.rounds * options.pulls; pair++) pairs.push(await pullPair(client, state.router, region.http, blobPath, bytes, pair % 2 === 0));
        const mibPerSecond = (seconds: number) => bytes / 1024 / 1024 / seconds;
        say(
          `- blob pull ${options.blobMiB} MiB, ${pairs.length} pairs (one through the router, one direct, at once; medians) (MiB/s): router (307) ${mibPerSecond(median(pairs.map((p) => p.router))).toFixed(0)}, ` +
            `direct ${mibPerSecond(median(pairs.map((p) => p.direct))).toFixed(0)}: ${median(pairs.map((p) => p.direct / p.router)).toFixed(2)}x, the median pair's (target >= 0.95)`,
        );
        const redirects = { router: [] as number[], direct: [] as number[] };
        for (let i = 0; i < REDIRECT_SAMPLES; i++) {
          redirects.router.push(await redirectMs(agent, state.router, blobPath, {}));
          redirects.direct.push(await redirectMs(agent, region.http, blobPath, { [BLOB_REDIRECT_HEADER]: '1' }));
        }
        say(
          `  - the 307 itself, ${REDIRECT_SAMPLES} interleaved, one at a time (ms): through the router p50 ${median(redirects.router).toFixed(2)}, p99 ${percentile(redirects.router, 0.99).toFixed(2)}; ` +
            `from the region asked as the router asks it p50 ${median(redirects.direct).toFixed(2)}, p99 ${percentile(redirects.direct, 0.99).toFixed(2)}`,
        );

        const pids = (via: 'router' | 'direct', routerPid = state.routerPid): Record<string, number> => (via === 'router' ? { router: routerPid, gateway: region.pid } : { gateway: region.pid });
        const manifestUrl = (via: 'router' | 'direct') => `${target(via)}${manifestPath}`;
        const shared = await interleaved(options.rounds, (via) => manifestRun(manifestUrl(via), options.manifestSeconds, workDir, pids(via)));
        say(manifestFigure('shared cores (router, gateway and wrk on any core)', shared));
        const fixedRate = await interleaved(options.rounds, (via) => manifestRun(manifestUrl(via), options.manifestSeconds, workDir, pids(via), undefined, FIXED_RATE_PAUSE_MS));
        say(fixedRateFigure(fixedRate));
        if (options.pin) {
          // The gateway has CPU 1 to itself in both runs (as far as this bench's processes go:
          // other work on the machine still runs anywhere); the router, a global endpoint on
          // machines of its own when deployed, shares CPU 0 with wrk.
          // One core for the router: as many processes as its default gives a machine of one
          // core (one), not the two of the shared figure time-sliced on it.
          const routerPid = (await cluster.restartRouter(options.pinnedRouterWorkers)).routerPid;
          const everyCpu = `0-${availableParallelism() - 1}`;
          pinProcessTree(region.pid, '1');
          pinProcessTree(routerPid, '0');
          try {
            const pinned = await interleaved(options.rounds, (via) => manifestRun(manifestUrl(via), options.manifestSeconds, workDir, pids(via, routerPid), '0'));
            say(manifestFigure(`pinned (gateway alone on CPU 1 in both runs; wrk on CPU 0, and the router beside it as ${options.pinnedRouterWorkers} process(es))`, pinned));
          } finally {
            pinProcessTree(region.pid, everyCpu);
            pinProcessTree(routerPid, everyCpu);
          }
        }
        // Each fill needs a blob the asked region has never seen: fresh ones, pushed to the first region only.
        const fresh: string[] = [];
        for (let i = 0; i < options.fills; i++) fresh.push(await pushLargeBlob(client, region.http, 'bench/fill', 1024 * 1024));
        const peer = state.regions[1]!;
        const fills: number[] = [];
        const hits: number[] = [];
        for (const blob of fresh) {
          const blobUrl = `/v2/bench/fill/blobs/${blob}`;
          hits.push(await firstByteMs(client, region.http, blobUrl));
          fills.push(await firstByteMs(client, peer.http, blobUrl));
        }
        say(
          `- first byte of a 1 MiB blob, ${options.fills} fresh blobs: read-through fill in ${peer.name} (from ${region.name}) ${median(fills).toFixed(1)} ms, ` +
            `local hit in ${region.name} ${median(hits).toFixed(1)} ms (medians)`,
        );
      },
      // Nothing replicates during the figures: the worker would only take CPU from them. The
      // router runs as --router-workers processes; its CPU figure sums them.
      { worker: false, routerWorkers: options.routerWorkers },
    );
  } finally {
    await agent.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench routing: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

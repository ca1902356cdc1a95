import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Agent, type Dispatcher } from 'undici';
import { formatSize, type BenchPlan } from './bench-plan.js';
import { startCpuMeter, type CpuReading, type OtherProcessCpu } from './cpu.js';
import { freshVariant, makeSmallImage, manifestAcceptHeader, ociManifestMediaType, variantTailBytes, type BlobFile } from './fixtures.js';
import { downloadAndCount, OciClient, type PushPatternName } from './oci-client.js';
import type { RunningTarget } from './targets.js';
import { runAb } from './ab.js';
import type { LoadRunOptions, LoadRunResult } from './load-run.js';
import { runWrk } from './wrk.js';

/**
 * The scenarios. Each one is a figure set plus an unmeasured `prepare` (once per target) and a
 * measured `run` (once per round per target). A run reports its figures together with the CPU
 * the client and the server spent during the measured part, so the report can say which side
 * was the limit.
 */

export interface FigureSpec {
  key: string;
  label: string;
  higherIsBetter: boolean;
  decimals: number;
  /** Shown for context only; no ratio (e.g. pages per tag walk). */
  informational?: boolean;
}

export interface RunResult {
  figures: Record<string, number>;
  /** Counts behind the figures (batches, bytes, requests), kept in the JSON. */
  details: Record<string, number>;
  wallSeconds: number;
  clientCpuSeconds: number;
  serverCpuSeconds: number;
  /** Postgres CPU, for targets that use it. */
  databaseCpuSeconds: number | undefined;
  /** The whole machine's CPU, everything above included, so other load on it shows. */
  machineCpuSeconds: number;
  /** Who else used the CPU meanwhile (other sessions share this machine). */
  otherProcesses: OtherProcessCpu[];
  /** Anything that makes the figures suspect (errors seen by wrk, for one). */
  warnings: string[];
  /** Threads the client can run on: at that many cores of CPU it is the bottleneck. */
  clientThreads: number;
}

export interface Scenario {
  id: ScenarioId;
  title: string;
  /** Whether nginx (static files) takes part, besides the registries. */
  includesStatic: boolean;
  figures: FigureSpec[];
  prepare?(target: RunningTarget): Promise<void>;
  run(target: RunningTarget, round: number): Promise<RunResult>;
}

export interface ScenarioContext {
  plan: BenchPlan;
  smallBlobs: BlobFile[];
  largeBlobs: BlobFile[];
  tools: { wrk: string; ab: string };
  /** Scratch space for load-generator scripts and result files. */
  workDir: string;
  ticksPerSecond: number;
}

const MiB = 2 ** 20;
const blobRepo = 'bench/blobs';

/** Runs `task(0..count-1)` with at most `concurrency` in flight; the first failure stops it. */
async function runPool(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < count) {
      const index = next++;
      try {
        await task(index);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/**
 * A keep-alive connection pool per origin, as many connections as the scenario's concurrency.
 * Every request through it carries the target's `requestHeaders` (its credentials, when it asks
 * for them), as a client that has signed in sends them on each request.
 */
async function withAgent<T>(target: RunningTarget, connections: number, use: (agent: Dispatcher) => Promise<T>): Promise<T> {
  const agent = new Agent({
    connections,
    keepAliveTimeout: 10_000,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  const extra = target.requestHeaders;
  const dispatcher: Dispatcher = extra
    ? agent.compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: { ...(opts.headers as Record<string, string> | undefined), ...extra } }, handler))
    : agent;
  try {
    return await use(dispatcher);
  } finally {
    await agent.close();
  }
}

interface Metered<T> {
  value: T;
  wallSeconds: number;
  /** This process's CPU: the client's, or close to nothing while a load generator runs. */
  clientCpuSeconds: number;
  cpu: CpuReading;
}

/** Times `work` and meters this (client) process, the target's processes and the machine. */
async function meter<T>(ctx: ScenarioContext, target: RunningTarget, work: () => Promise<T>): Promise<Metered<T>> {
  const stopCpuMeter = startCpuMeter({ serverPid: target.pid, countPostgres: target.usesPostgres, ticksPerSecond: ctx.ticksPerSecond });
  const clientBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const value = await work();
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const client = process.cpuUsage(clientBefore);
  const cpu = stopCpuMeter();
  return { value, wallSeconds, clientCpuSeconds: (client.user + client.system) / 1e6, cpu };
}

/** Two metered parts of one run as one: times and CPU added, the busiest other processes kept. */
function addMetered<T>(a: Metered<T> | undefined, b: Metered<T>): Metered<T> {
  if (!a) return b;
  const others = new Map<number, OtherProcessCpu>();
  for (const other of [...a.cpu.otherProcesses, ...b.cpu.otherProcesses]) {
    const seen = others.get(other.pid);
    others.set(other.pid, seen ? { ...seen, seconds: seen.seconds + other.seconds } : other);
  }
  const database = a.cpu.databaseSeconds === undefined ? undefined : a.cpu.databaseSeconds + (b.cpu.databaseSeconds ?? 0);
  return {
    value: b.value,
    wallSeconds: a.wallSeconds + b.wallSeconds,
    clientCpuSeconds: a.clientCpuSeconds + b.clientCpuSeconds,
    cpu: {
      serverSeconds: a.cpu.serverSeconds + b.cpu.serverSeconds,
      databaseSeconds: database,
      machineSeconds: a.cpu.machineSeconds + b.cpu.machineSeconds,
      otherProcesses: [...others.values()].sort((x, y) => y.seconds - x.seconds).slice(0, 3),
    },
  };
}

function runResult(
  metered: Metered<unknown>,
  figures: Record<string, number>,
  extra: { details?: Record<string, number>; warnings?: string[]; loadGeneratorCpuSeconds?: number; clientThreads?: number } = {},
): RunResult {
  return {
    figures,
    details: extra.details ?? {},
    wallSeconds: metered.wallSeconds,
    clientCpuSeconds: metered.clientCpuSeconds + (extra.loadGeneratorCpuSeconds ?? 0),
    serverCpuSeconds: metered.cpu.serverSeconds,
    databaseCpuSeconds: metered.cpu.databaseSeconds,
    machineCpuSeconds: metered.cpu.machineSeconds,
    otherProcesses: metered.cpu.otherProcesses,
    warnings: extra.warnings ?? [],
    clientThreads: extra.clientThreads ?? 1,
  };
}

/** Tails unique to this bench run: a random prefix, then a counter. */
const variantRunId = randomBytes(8);
let variantCounter = 0n;
function nextVariantTail(): Buffer {
  const tail = Buffer.alloc(variantTailBytes);
  variantRunId.copy(tail, 0);
  tail.writeBigUInt64BE(variantCounter++, 8);
  return tail;
}

/**
 * Runs `batch` once, then again until `minSeconds` have passed in all, and says how many ran:
 * one batch of 64 MiB takes a fraction of a second, too short for a steady figure or for CPU
 * counters that tick every 10 ms.
 */
async function repeatFor(minSeconds: number, batch: () => Promise<void>): Promise<number> {
  const started = performance.now();
  let batches = 0;
  do {
    await batch();
    batches++;
  } while ((performance.now() - started) / 1000 < minSeconds);
  return batches;
}

function requireRegistry(target: RunningTarget): void {
  if (target.kind !== 'registry') throw new Error(`${target.label} is not a registry`);
}

/** How a scenario's label names a push pattern; the first pattern keeps the labels it always had. */
const patternLabels: Record<PushPatternName, string> = {
  'post-put': '',
  containerd: ', as containerd (HEAD, POST, PUT)',
  skopeo: ', as skopeo (HEAD, POST, PATCH, PUT; a connection each)',
};

/** What a blob scenario moves: "64 × 1 MiB, c=8". */
function blobBatch(files: BlobFile[], concurrency: number): string {
  return `${files.length} × ${formatSize(files[0]?.size ?? 0)}, c=${concurrency}`;
}

/** A blob scenario's id, title and one figure, MiB/s, labelled `what`. */
function mibpsScenario(id: ScenarioId, what: string, includesStatic: boolean): Pick<Scenario, 'id' | 'title' | 'includesStatic' | 'figures'> {
  return { id, title: what, includesStatic, figures: [{ key: 'mibps', label: `${what} (MiB/s)`, higherIsBetter: true, decimals: 0 }] };
}

function blobPushScenario(ctx: ScenarioContext, id: ScenarioId, files: BlobFile[], concurrency: number, pattern: PushPatternName = 'post-put'): Scenario {
  return {
    ...mibpsScenario(id, `blob push ${blobBatch(files, concurrency)}${patternLabels[pattern]}`, false),
    async run(target) {
      requireRegistry(target);
      // Every push sends a blob new to the registry (a fresh variant of a fixture), so each
      // one is really received, hashed and written; a blob it already held could be skipped.
      return withAgent(target, concurrency, async (agent) => {
        const client = new OciClient(target.url, agent, { pattern, connections: concurrency });
        try {
          const metered = await meter(ctx, target, () =>
            repeatFor(ctx.plan.blobMinSeconds, async () => {
              const batch = files.map((file) => freshVariant(file, nextVariantTail()));
              await runPool(batch.length, concurrency, (i) => client.pushBlob(blobRepo, batch[i]!));
            }),
          );
          const batches = metered.value;
          const bytes = batches * files.reduce((sum, file) => sum + file.size, 0);
          return runResult(metered, { mibps: bytes / MiB / metered.wallSeconds }, { details: { batches, bytes } });
        } finally {
          client.close();
        }
      });
    },
  };
}

/**
 * Pulls of blobs pushed a moment before: each batch pushes fresh variants of the files (not
 * timed), then pulls them all back at once (timed), until the run has lasted `blobMinSeconds`.
 * A registry's newest blobs are its hottest (a CI job pushes, then every deploy pulls), and a
 * blob just written may or may not be in the page cache, depending on how the registry wrote it.
 */
function freshPullScenario(ctx: ScenarioContext, id: ScenarioId, files: BlobFile[], concurrency: number): Scenario {
  return {
    ...mibpsScenario(id, `blob pull right after its push, ${blobBatch(files, concurrency)}`, false),
    async run(target) {
      requireRegistry(target);
      return withAgent(target, concurrency, async (agent) => {
        const client = new OciClient(target.url, agent);
        const started = performance.now();
        let pulls: Metered<void> | undefined;
        let batches = 0;
        let received = 0;
        do {
          const batch = files.map((file) => freshVariant(file, nextVariantTail()));
          await runPool(batch.length, concurrency, (i) => client.pushBlob(blobRepo, batch[i]!));
          const urls = batch.map((blob) => new URL(`/v2/${blobRepo}/blobs/${blob.digest}`, target.url));
          pulls = addMetered(
            pulls,
            await meter(ctx, target, () =>
              runPool(batch.length, concurrency, async (i) => {
                const bytes = await downloadAndCount(agent, urls[i]!, batch[i]!.size);
                received += bytes;
              }),
            ),
          );
          batches++;
        } while ((performance.now() - started) / 1000 < ctx.plan.blobMinSeconds);
        return runResult(pulls, { mibps: received / MiB / pulls.wallSeconds }, { details: { batches, bytes: received } });
      });
    },
  };
}

/** Pushes the blobs a pull scenario reads, once per registry; static servers serve the files as they are. */
/**
 * Before each round's pulls: the registry holds every blob, and every target, static servers
 * included, sends each one's exact bytes (sha256 checked, outside the timed part).
 */
async function preparePull(target: RunningTarget, files: BlobFile[], concurrency: number): Promise<void> {
  await withAgent(target, concurrency, async (agent) => {
    if (target.kind === 'registry') {
      const client = new OciClient(target.url, agent);
      await runPool(files.length, concurrency, async (i) => {
        const file = files[i]!;
        if (!(await client.blobExists(blobRepo, file.digest))) await client.pushBlob(blobRepo, file);
      });
    }
    await runPool(files.length, concurrency, async (i) => {
      const file = files[i]!;
      await downloadAndCount(agent, new URL(pullPath(target, file), target.url), file.size, file.digest);
    });
  });
}

/** Where `target` serves `file`: the blob route of a registry, the file's path on a static server. */
function pullPath(target: RunningTarget, file: BlobFile): string {
  return target.kind === 'registry' ? `/v2/${blobRepo}/blobs/${file.digest}` : `/${file.relativePath}`;
}

function blobPullScenario(ctx: ScenarioContext, id: ScenarioId, files: BlobFile[], concurrency: number): Scenario {
  return {
    ...mibpsScenario(id, `blob pull ${blobBatch(files, concurrency)}`, true),
    prepare: (target) => preparePull(target, files, concurrency),
    async run(target) {
      const urls = files.map((file) => new URL(pullPath(target, file), target.url));
      return withAgent(target, concurrency, async (agent) => {
        let received = 0;
        const metered = await meter(ctx, target, () =>
          repeatFor(ctx.plan.blobMinSeconds, () =>
            runPool(files.length, concurrency, async (i) => {
              const bytes = await downloadAndCount(agent, urls[i]!, files[i]!.size);
              received += bytes;
            }),
          ),
        );
        const batches = metered.value;
        const expected = batches * files.reduce((sum, file) => sum + file.size, 0);
        if (received !== expected) throw new Error(`${target.label}: pulled ${received} bytes, expected ${expected}`);
        return runResult(metered, { mibps: received / MiB / metered.wallSeconds }, { details: { batches, bytes: received } });
      });
    },
  };
}

/**
 * The same pulls driven by wrk, a C client that costs far less CPU per byte than undici, so
 * the servers rather than the client set the pace (the undici rows are client-bound). wrk does
 * not check bodies; the run checks that every response was 2xx and that at least the blobs'
 * bytes arrived, and reports every byte read per second.
 */
function blobPullWrkScenario(ctx: ScenarioContext, id: ScenarioId, files: BlobFile[], concurrency: number): Scenario {
  return {
    ...mibpsScenario(id, `blob pull ${blobBatch(files, concurrency)}, wrk`, true),
    prepare: (target) => preparePull(target, files, concurrency),
    async run(target) {
      if (files.length === 0) throw new Error(`${id} has no blobs to pull`);
      const common = {
        workDir: ctx.workDir,
        url: target.url,
        method: 'GET' as const,
        headers: { ...target.requestHeaders },
        // One thread per core (at most one per connection): a single wrk thread caps nginx
        // before nginx is busy, and a capped yardstick flatters every ratio against it.
        threads: Math.min(concurrency, availableParallelism()),
        connections: concurrency,
        paths: files.map((file) => pullPath(target, file)),
      };
      await runWrk(ctx.tools.wrk, { ...common, durationSeconds: 1 });
      // wrk takes whole seconds.
      const durationSeconds = Math.max(1, Math.round(ctx.plan.blobMinSeconds));
      const metered = await meter(ctx, target, () => runWrk(ctx.tools.wrk, { ...common, durationSeconds }));
      const run = metered.value;
      const bytes = run.bytes ?? 0;
      const bodyBytes = run.requests * (files[0]?.size ?? 0);
      if (run.errors.status + run.errors.socket + run.errors.timeout > 0 || run.requests === 0 || bytes < bodyBytes) {
        throw new Error(`${target.label}: wrk read ${bytes} bytes for ${run.requests} responses; ${loadRunWarnings(run).join('; ') || 'too few bytes'}`);
      }
      return runResult(
        metered,
        { mibps: bytes / MiB / run.durationSeconds },
        { details: { requests: run.requests, bytes }, loadGeneratorCpuSeconds: run.clientCpuSeconds, clientThreads: common.threads },
      );
    },
  };
}

function smallImagePushScenario(ctx: ScenarioContext, id: ScenarioId, images: BenchPlan['smallImages'], pattern: PushPatternName = 'post-put'): Scenario {
  const { count, concurrency, layers, layerBytes, repos } = images;
  return {
    id,
    title: `small image push ${count} images, ${formatSize(layerBytes)} layers, c=${concurrency}${patternLabels[pattern]}`,
    includesStatic: false,
    figures: [
      {
        key: 'images',
        label: `image push (config + ${layers} × ${formatSize(layerBytes)} layers + manifest), ${count} images, c=${concurrency}${patternLabels[pattern]} (images/s)`,
        higherIsBetter: true,
        decimals: 1,
      },
    ],
    async run(target, round) {
      requireRegistry(target);
      // Fresh random images every run, so every blob and manifest is new to the registry.
      const built = Array.from({ length: count }, () => makeSmallImage(layers, layerBytes));
      const where = (i: number) => ({ repo: `bench/${id}-${i % repos}`, tag: `r${round}-${i}` });
      return withAgent(target, concurrency, async (agent) => {
        const client = new OciClient(target.url, agent, { pattern, connections: concurrency });
        try {
          const metered = await meter(ctx, target, () =>
            runPool(count, concurrency, async (i) => {
              const { repo, tag } = where(i);
              await client.pushImage(repo, tag, built[i]!, ociManifestMediaType);
            }),
          );
          const last = where(count - 1);
          const stored = await client.getManifest(last.repo, last.tag);
          if (stored.digest !== built[count - 1]!.manifest.digest) {
            throw new Error(`${target.label}: ${last.repo}:${last.tag} reads back as ${stored.digest}`);
          }
          return runResult(metered, { images: count / metered.wallSeconds }, { details: { images: count } });
        } finally {
          client.close();
        }
      });
    },
  };
}

function loadRunWarnings(run: LoadRunResult): string[] {
  const { socket, timeout, status } = run.errors;
  if (socket + timeout + status === 0) return [];
  return [`${run.tool} saw errors: socket/failed ${socket}, timeout ${timeout}, non-2xx/3xx ${status}`];
}

/**
 * A warm-up run, then a metered one whose client CPU is the load generator's own: wrk for GET,
 * ab for HEAD (wrk cannot do HEAD; see wrk.ts).
 */
async function measureRequestRate(ctx: ScenarioContext, target: RunningTarget, url: string, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<RunResult> {
  const { connections, threads, warmupSeconds, durationSeconds } = ctx.plan.requestRate;
  const generate = (opts: LoadRunOptions) => (method === 'GET' ? runWrk(ctx.tools.wrk, opts) : runAb(ctx.tools.ab, opts));
  const common = { workDir: ctx.workDir, url, method, headers: { ...target.requestHeaders, ...headers }, threads, connections };
  await generate({ ...common, durationSeconds: warmupSeconds });
  const metered = await meter(ctx, target, () => generate({ ...common, durationSeconds }));
  const run = metered.value;
  // A rate bought with failed requests is no rate: beyond a stray error or two, the run fails.
  const failed = run.errors.socket + run.errors.timeout + run.errors.status;
  if (run.requests === 0 || failed > run.requests * 0.001) {
    throw new Error(`${target.label}: ${failed} of ${run.requests} requests failed; ${loadRunWarnings(run).join('; ')}`);
  }
  return runResult(
    metered,
    { rps: run.requestsPerSecond, p50: run.latencyP50Ms, p99: run.latencyP99Ms },
    {
      details: { requests: run.requests },
      warnings: loadRunWarnings(run),
      loadGeneratorCpuSeconds: run.clientCpuSeconds,
      // ab is single-threaded whatever the plan says.
      clientThreads: method === 'GET' ? threads : 1,
    },
  );
}

function requestRateFigures(what: string, connections: number): FigureSpec[] {
  return [
    { key: 'rps', label: `${what}, c=${connections} (req/s)`, higherIsBetter: true, decimals: 0 },
    { key: 'p50', label: `${what} p50 (ms)`, higherIsBetter: false, decimals: 2 },
    { key: 'p99', label: `${what} p99 (ms)`, higherIsBetter: false, decimals: 2 },
  ];
}

function manifestGetScenario(ctx: ScenarioContext): Scenario {
  const repo = 'bench/manifest';
  const { connections } = ctx.plan.requestRate;
  return {
    id: 'manifest-get',
    title: `manifest GET by tag, c=${connections}`,
    includesStatic: false,
    figures: requestRateFigures('manifest GET by tag', connections),
    async prepare(target) {
      await withAgent(target, 1, async (agent) => {
        const client = new OciClient(target.url, agent);
        const image = makeSmallImage(1, 1024);
        await client.pushImage(repo, 'latest', image, ociManifestMediaType);
        const stored = await client.getManifest(repo, 'latest');
        if (stored.digest !== image.manifest.digest || !stored.contentType.startsWith(ociManifestMediaType)) {
          throw new Error(`${target.label}: ${repo}:latest reads back as ${stored.digest} (${stored.contentType})`);
        }
      });
    },
    run: (target) =>
      measureRequestRate(ctx, target, `${target.url}/v2/${repo}/manifests/latest`, 'GET', { Accept: manifestAcceptHeader }),
  };
}

function blobHeadScenario(ctx: ScenarioContext): Scenario {
  const repo = 'bench/head';
  const { connections } = ctx.plan.requestRate;
  // The layer each target's HEADs ask for, set by prepare.
  const digestByTarget = new Map<string, string>();
  return {
    id: 'blob-head',
    title: `blob HEAD, c=${connections}`,
    includesStatic: false,
    figures: requestRateFigures('blob HEAD', connections),
    async prepare(target) {
      await withAgent(target, 1, async (agent) => {
        const client = new OciClient(target.url, agent);
        const image = makeSmallImage(1, 4096);
        await client.pushImage(repo, 'latest', image, ociManifestMediaType);
        const layer = image.layers[0]!;
        if (!(await client.blobExists(repo, layer.digest))) throw new Error(`${target.label}: HEAD of a pushed blob is not 200`);
        digestByTarget.set(target.name, layer.digest);
      });
    },
    run(target) {
      const digest = digestByTarget.get(target.name);
      if (!digest) throw new Error(`blob-head: ${target.label} was not prepared`);
      return measureRequestRate(ctx, target, `${target.url}/v2/${repo}/blobs/${digest}`, 'HEAD', {});
    },
  };
}

function tagWalkScenario(ctx: ScenarioContext): Scenario {
  const repo = 'bench/tags';
  const { tags, pageSize, concurrency, durationSeconds, setupConcurrency } = ctx.plan.tagWalk;
  const tagName = (i: number) => `tag-${String(i).padStart(5, '0')}`;
  return {
    id: 'tag-walk',
    title: `tag list walk, ${tags} tags by ${pageSize}, c=${concurrency}`,
    includesStatic: false,
    figures: [
      { key: 'walks', label: `full tag-list walks, ${tags} tags paged by n=${pageSize}, c=${concurrency} (walks/s)`, higherIsBetter: true, decimals: 1 },
      { key: 'pages', label: `pages per walk (n=${pageSize} asked)`, higherIsBetter: false, decimals: 0, informational: true },
    ],
    async prepare(target) {
      await withAgent(target, setupConcurrency, async (agent) => {
        const client = new OciClient(target.url, agent);
        const image = makeSmallImage(1, 1024);
        await client.pushImage(repo, tagName(0), image, ociManifestMediaType);
        await runPool(tags - 1, setupConcurrency, (i) => client.putManifest(repo, tagName(i + 1), image.manifest, ociManifestMediaType));
      });
    },
    async run(target) {
      return withAgent(target, concurrency, async (agent) => {
        const client = new OciClient(target.url, agent);
        let walks = 0;
        let pages = 0;
        const metered = await meter(ctx, target, async () => {
          const deadline = Date.now() + durationSeconds * 1000;
          await runPool(concurrency, concurrency, async () => {
            while (Date.now() < deadline) {
              const walk = await client.walkTags(repo, pageSize);
              if (walk.tags.size !== tags) throw new Error(`${target.label}: tag walk saw ${walk.tags.size} tags, expected ${tags}`);
              walks++;
              pages = walk.pages;
            }
          });
        });
        return runResult(metered, { walks: walks / metered.wallSeconds, pages }, { details: { walks } });
      });
    },
  };
}

export const scenarioIds = [
  'push-small',
  'push-large',
  'pull-small',
  'pull-large',
  'pull-small-wrk',
  'pull-large-wrk',
  'small-images',
  'push-small-skopeo',
  'push-large-skopeo',
  'small-images-skopeo',
  'small-images-containerd',
  'pull-small-fresh',
  'pull-large-fresh',
  'manifest-get',
  'blob-head',
  'tag-walk',
] as const;
export type ScenarioId = (typeof scenarioIds)[number];

/** All scenarios, in the order they run (the order of `scenarioIds`). */
export function createScenarios(ctx: ScenarioContext): Scenario[] {
  const { smallBlobs, largeBlobs } = ctx.plan;
  return [
    blobPushScenario(ctx, 'push-small', ctx.smallBlobs, smallBlobs.concurrency),
    blobPushScenario(ctx, 'push-large', ctx.largeBlobs, largeBlobs.concurrency),
    blobPullScenario(ctx, 'pull-small', ctx.smallBlobs, smallBlobs.concurrency),
    blobPullScenario(ctx, 'pull-large', ctx.largeBlobs, largeBlobs.concurrency),
    blobPullWrkScenario(ctx, 'pull-small-wrk', ctx.smallBlobs, smallBlobs.concurrency),
    blobPullWrkScenario(ctx, 'pull-large-wrk', ctx.largeBlobs, largeBlobs.concurrency),
    smallImagePushScenario(ctx, 'small-images', ctx.plan.smallImages),
    blobPushScenario(ctx, 'push-small-skopeo', ctx.smallBlobs, smallBlobs.concurrency, 'skopeo'),
    blobPushScenario(ctx, 'push-large-skopeo', ctx.largeBlobs, largeBlobs.concurrency, 'skopeo'),
    smallImagePushScenario(ctx, 'small-images-skopeo', ctx.plan.clientImages, 'skopeo'),
    smallImagePushScenario(ctx, 'small-images-containerd', ctx.plan.clientImages, 'containerd'),
    freshPullScenario(ctx, 'pull-small-fresh', ctx.smallBlobs, smallBlobs.concurrency),
    freshPullScenario(ctx, 'pull-large-fresh', ctx.largeBlobs, largeBlobs.concurrency),
    manifestGetScenario(ctx),
    blobHeadScenario(ctx),
    tagWalkScenario(ctx),
  ];
}

/**
 * `pnpm bench replication`: how fast a push reaches every other region, on a cluster on this
 * machine (`pnpm cluster`'s Cluster, every part its own process on loopback).
 *
 * - Lag: push complete at the source (the manifest PUT's 201) until every other region lists
 *   its tag (the manifest replicated, its blobs held), for small images (a config and three 1 KiB layers) pushed one after
 *   another; p50 and p99, with 3 regions and again with 6.
 * - A 1 GiB layer replicated to two regions, as throughput per target region against a plain
 *   HTTP stream of the same bytes over loopback into a file (fsynced), measured in the same run.
 * - Backfill: a region added to a cluster holding images, until it is `active`: images/s, MB/s.
 * - Peak resident memory (VmHWM) of the worker and of every gateway during the 1 GiB run.
 *
 * Figures swing with the machine; the ratios within one run are what to compare.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { withCluster } from '../bench-cluster.js';
import { readClockTicksPerSecond, startCpuMeter } from '../cpu.js';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** The parts of the bench, in the order they run. */
const SCENARIOS = ['lag', 'lag-six', 'large', 'backfill'] as const;
type ScenarioId = (typeof SCENARIOS)[number];

interface Options {
  images: number;
  largeBytes: number;
  backfillImages: number;
  scenarios: ReadonlySet<ScenarioId>;
}

const usage = `Usage: pnpm bench replication [--quick] [--scenarios LIST] [--images N] [--large-mib N] [--backfill-images N] [--no-six]

  --scenarios LIST      run only these of ${SCENARIOS.join(', ')} (default all), e.g.
                        --scenarios large for the large-layer copy alone
  --images N            small images pushed for the lag figures (default 100, quick 20)
  --large-mib N         size of the large layer in MiB (default 1024, quick 64)
  --backfill-images N   images the cluster holds when a region is added (default 200, quick 30)
  --no-six              skip the 6-region lag run (lag-six)`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv[0] === '--' ? argv.slice(1) : argv,
    options: {
      quick: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      images: { type: 'string' },
      'large-mib': { type: 'string' },
      'backfill-images': { type: 'string' },
      'no-six': { type: 'boolean', default: false },
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
  const asked = values.scenarios === undefined ? [...SCENARIOS] : values.scenarios.split(',').map((id) => id.trim()).filter(Boolean);
  for (const id of asked) {
    if (!(SCENARIOS as readonly string[]).includes(id)) throw new Error(`unknown scenario ${id}; known: ${SCENARIOS.join(', ')}`);
  }
  const scenarios = new Set(asked as ScenarioId[]);
  if (values['no-six']) scenarios.delete('lag-six');
  return {
    images: whole(values.images, quick ? 20 : 100, 'images'),
    largeBytes: whole(values['large-mib'], quick ? 64 : 1024, 'large-mib') * 1024 * 1024,
    backfillImages: whole(values['backfill-images'], quick ? 30 : 200, 'backfill-images'),
    scenarios,
  };
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A small image of its own: config and three 1 KiB layers of fresh random bytes. */
function smallImage() {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: randomBytes(8).toString('hex') }));
  const layers = [0, 1, 2].map(() => randomBytes(1024));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length })),
    }),
  );
  return { blobs: [config, ...layers], manifest, digest: sha256(manifest) };
}

async function pushBlob(base: string, repository: string, bytes: Buffer): Promise<void> {
  const opened = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  await opened.body?.cancel();
  if (opened.status !== 202) throw new Error(`POST upload: ${opened.status}`);
  const location = new URL(opened.headers.get('location')!, base);
  location.searchParams.set('digest', sha256(bytes));
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes as BodyInit });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status}`);
}

async function pushManifest(base: string, repository: string, tag: string, manifest: Buffer): Promise<void> {
  const put = await fetch(`${base}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest as BodyInit });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`PUT manifest: ${put.status} ${await put.text()}`);
}

/**
 * Whether the region lists `tag` in its own tag list: the tag arrives with its manifest, which a
 * region applies only once it holds every blob the manifest names. A manifest answered by
 * digest proves nothing any more: with read-through, a region that lacks it serves it from a peer.
 */
async function tagListed(base: string, repository: string, tag: string): Promise<boolean> {
  const list = await fetch(`${base}/v2/${repository}/tags/list`).catch(() => undefined);
  if (list?.status !== 200) {
    await list?.body?.cancel();
    return false;
  }
  return ((await list.json()) as { tags?: string[] | null }).tags?.includes(tag) ?? false;
}

/** Resolves with the moment `check` first holds, polling every `everyMs`; rejects after `boundMs`. */
async function firstTrue(check: () => Promise<boolean>, everyMs: number, boundMs: number): Promise<number> {
  const deadline = performance.now() + boundMs;
  for (;;) {
    if (await check()) return performance.now();
    if (performance.now() > deadline) throw new Error(`not within ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Lag of `images` small images pushed one after another to the first region, until every other region lists each one's tag. */
async function measureLag(regions: number, images: number): Promise<{ p50: number; p99: number; max: number }> {
  return withCluster(regions, async (state) => {
    const [source, ...others] = state.regions;
    const lags: number[] = [];
    for (let i = 0; i < images; i++) {
      const image = smallImage();
      for (const blob of image.blobs) await pushBlob(source!.http, 'bench/lag', blob);
      await pushManifest(source!.http, 'bench/lag', `t${i}`, image.manifest);
      const pushed = performance.now();
      const arrivals = await Promise.all(others.map((region) => firstTrue(() => tagListed(region.http, 'bench/lag', `t${i}`), 5, 60_000)));
      lags.push(Math.max(...arrivals) - pushed);
    }
    return { p50: percentile(lags, 50), p99: percentile(lags, 99), max: Math.max(...lags) };
  });
}

/** Reads a process's peak resident memory (VmHWM), in MiB. */
async function peakRssMiB(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const match = status && /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : undefined;
}

/** A file of `bytes` random bytes (written in 8 MiB pieces), and its digest. */
async function writeRandomFile(file: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  for (let written = 0; written < bytes; ) {
    const piece = randomBytes(Math.min(8 * 1024 * 1024, bytes - written));
    hash.update(piece);
    await handle.write(piece);
    written += piece.length;
  }
  await handle.close();
  return `sha256:${hash.digest('hex')}`;
}

/**
 * The yardstick: the same bytes streamed over loopback HTTP into a file that is fsynced. Both ends
 * run in this process, so its CPU time over the stream is what the plain copy costs, sender and
 * receiver together: what a copy's CPU is weighed against when the machine is too busy for times.
 */
async function plainStream(file: string, directory: string): Promise<{ seconds: number; cpuSeconds: number }> {
  const target = path.join(directory, 'plain-stream-copy');
  const server = http.createServer(async (req, res) => {
    const out = createWriteStream(target, { flush: true });
    await pipeline(req, out);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const size = (await stat(file)).size;
  const started = performance.now();
  const cpu = process.cpuUsage();
  await new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/', headers: { 'content-length': size } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(req);
  });
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  server.close();
  await rm(target, { force: true });
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6 };
}

interface LargeResult {
  perTargetSeconds: number[];
  plainSeconds: number;
  /** CPU seconds of the plain stream, both ends. */
  plainCpuSeconds: number;
  peakMiB: Record<string, number | undefined>;
  /** CPU seconds of each part of the cluster from the blob's commit until every target serves it, and of the machine. */
  cpuSeconds: Record<string, number>;
  /** The 1-minute load average when the copy started. */
  loadAverage: number;
}

async function measureLarge(bytes: number): Promise<LargeResult> {
  const directory = await mkdtemp(path.join(tmpdir(), 'meridian-bench-large-'));
  try {
    const file = path.join(directory, 'layer');
    const digest = await writeRandomFile(file, bytes);
    const plain = await plainStream(file, directory);
    return await withCluster(3, async (state) => {
      const [source, ...targets] = state.regions;
      const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
      await pushBlob(source!.http, 'bench/large', config);
      // The layer goes in as a client pushes it: POST, then one PUT streaming the file.
      const opened = await fetch(`${source!.http}/v2/bench/large/blobs/uploads/`, { method: 'POST' });
      await opened.body?.cancel();
      const location = new URL(opened.headers.get('location')!, source!.http);
      location.searchParams.set('digest', digest);
      const put = await fetch(location, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes) },
        body: createReadStream(file, { highWaterMark: 1024 * 1024 }) as unknown as BodyInit,
        duplex: 'half',
      } as RequestInit);
      await put.body?.cancel();
      if (put.status !== 201) throw new Error(`PUT large layer: ${put.status}`);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: bytes }],
        }),
      );
      // Timed from the moment the blob is committed at the source: its replication starts then.
      const committed = performance.now();
      const loadAverage = Number((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]);
      const ticksPerSecond = readClockTicksPerSecond();
      const parts: Array<[string, number]> = [['worker', state.workerPid], ...state.regions.map((region): [string, number] => [`gateway ${region.name}`, region.pid])];
      const meters = parts.map(([part, pid]) => [part, startCpuMeter({ serverPid: pid, countPostgres: false, ticksPerSecond })] as const);
      await pushManifest(source!.http, 'bench/large', 'v1', manifest);
      const arrivals = await Promise.all(targets.map((region) => firstTrue(() => tagListed(region.http, 'bench/large', 'v1'), 50, 600_000)));
      const cpuSeconds: Record<string, number> = {};
      for (const [part, stop] of meters) {
        const reading = stop();
        cpuSeconds[part] = reading.serverSeconds;
        cpuSeconds.machine = reading.machineSeconds;
      }
      const peakMiB: Record<string, number | undefined> = { worker: await peakRssMiB(state.workerPid) };
      for (const region of state.regions) peakMiB[`gateway ${region.name}`] = await peakRssMiB(region.pid);
      return { perTargetSeconds: arrivals.map((at) => (at - committed) / 1000), plainSeconds: plain.seconds, plainCpuSeconds: plain.cpuSeconds, peakMiB, cpuSeconds, loadAverage };
    });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

async function measureBackfill(images: number): Promise<{ seconds: number; images: number; bytes: number }> {
  return withCluster(3, async (state, cluster) => {
    const source = state.regions[0]!;
    let bytes = 0;
    for (let i = 0; i < images; i++) {
      const image = smallImage();
      for (const blob of image.blobs) await pushBlob(source.http, 'bench/backfill', blob);
      await pushManifest(source.http, 'bench/backfill', `t${i}`, image.manifest);
      bytes += image.blobs.reduce((sum, blob) => sum + blob.length, image.manifest.length);
    }
    // Everything replicated to the cluster's own regions first, so the backfill is measured alone.
    const last = state.regions.slice(1);
    await Promise.all(last.map((region) => firstTrue(async () => (await fetch(`${region.http}/v2/bench/backfill/tags/list?n=100000`).then((r) => r.json()) as { tags?: string[] }).tags?.length === images, 100, 600_000)));
    const added = await cluster.up(4);
    const region = added.regions[3]!;
    // The cluster registers a new region at once; it turns active when its backfill is done.
    const started = performance.now();
    await firstTrue(async () => {
      const list = (await fetch(`${added.controlPlane}/api/v1/regions`).then((r) => r.json())) as { regions: Array<{ name: string; state: string }> };
      return list.regions.find((r) => r.name === region.name)?.state === 'active';
    }, 100, 600_000);
    return { seconds: (performance.now() - started) / 1000, images, bytes };
  });
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2).filter((arg) => arg !== 'replication'));
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    process.stdout.write(`${line}\n`);
  };
  say(`# pnpm bench replication (${new Date().toISOString()})`);
  say('');
  const { scenarios } = options;
  if (scenarios.has('lag')) {
    const three = await measureLag(3, options.images);
    say(`- lag, 3 regions, ${options.images} small images: p50 ${three.p50.toFixed(0)} ms, p99 ${three.p99.toFixed(0)} ms (max ${three.max.toFixed(0)} ms)`);
  }
  if (scenarios.has('lag-six')) {
    const six = await measureLag(6, options.images);
    say(`- lag, 6 regions, ${options.images} small images: p50 ${six.p50.toFixed(0)} ms, p99 ${six.p99.toFixed(0)} ms (max ${six.max.toFixed(0)} ms)`);
  }
  if (scenarios.has('large')) {
    const large = await measureLarge(options.largeBytes);
    const mib = options.largeBytes / 1024 / 1024;
    const plain = mib / large.plainSeconds;
    const gib = mib / 1024;
    say(`- ${mib} MiB layer: plain HTTP stream over loopback into an fsynced file ${plain.toFixed(0)} MiB/s, ${(large.plainCpuSeconds / gib).toFixed(2)} CPU s per GiB (both ends)`);
    large.perTargetSeconds.forEach((seconds, i) => say(`  - target ${i + 1}: ${seconds.toFixed(1)} s, ${(mib / seconds).toFixed(0)} MiB/s, ${(mib / seconds / plain).toFixed(2)}x the plain stream`));
    say(`  - peak resident memory: ${Object.entries(large.peakMiB).map(([part, value]) => `${part} ${value?.toFixed(0) ?? '?'} MiB`).join(', ')}`);
    const { machine = 0, ...parts } = large.cpuSeconds;
    const cluster = Object.values(parts).reduce((sum, seconds) => sum + seconds, 0);
    const wall = Math.max(...large.perTargetSeconds);
    say(
      `  - CPU until both targets served it: ${Object.entries(parts).map(([part, seconds]) => `${part} ${seconds.toFixed(1)} s`).join(', ')}; ` +
        `machine ${((machine / wall) * 100).toFixed(0)}% busy of ${availableParallelism() * 100}% over ${wall.toFixed(1)} s (${(((machine - cluster) / wall) * 100).toFixed(0)}% outside the cluster's processes), load average ${large.loadAverage.toFixed(1)} at the start`,
    );
    // Weighed as the plain stream is: CPU per GiB that reached a target, against its both ends.
    const copied = gib * large.perTargetSeconds.length;
    say(`  - CPU per GiB copied: ${(cluster / copied).toFixed(2)} s for the cluster, ${(cluster / copied / (large.plainCpuSeconds / gib)).toFixed(2)}x the plain stream's`);
  }
  if (scenarios.has('backfill')) {
    const backfill = await measureBackfill(options.backfillImages);
    say(`- backfill of ${backfill.images} images into a new region: ${backfill.seconds.toFixed(1)} s, ${(backfill.images / backfill.seconds).toFixed(1)} images/s, ${(backfill.bytes / 1e6 / backfill.seconds).toFixed(2)} MB/s`);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench replication: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

/**
 * `pnpm bench telemetry`: what tracing costs. Two Meridian gateways on this machine, each on a
 * database and data directory of its own: one without telemetry, one exporting every trace over
 * OTLP/HTTP to a local receiver that accepts and discards (otlp-sink.ts). The same scenarios as
 * `pnpm bench` (manifest GET by tag with wrk, blob pushes and pulls), rounds interleaved, the
 * order reversed every other round. Each round's traced figure is divided by the untraced one of
 * the same round, and the verdict is the median of those ratios (pairedRatios), printed with
 * their spread: on this shared machine one round's load can move a figure by more than tracing
 * does, and a ratio of medians taken from different rounds let one such round decide. Each round
 * runs on a pair of gateways started for it (runOnFreshTargets), since one process pair differs
 * from another of the same configuration by several per cent for its whole life.
 *
 * The budget: manifest GET req/s with telemetry at least 0.9 of without, blob MiB/s at least
 * 0.95. /metrics is served by both alike (it is always on); only the tracing differs.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readClockTicksPerSecond } from '../cpu.js';
import { writeBlobFiles } from '../fixtures.js';
import { sampleBackgroundLoad } from '../machine.js';
import { fullPlan, type BenchPlan } from '../bench-plan.js';
import { medianFigure } from '../report.js';
import { createScenarios, type ScenarioId } from '../scenarios.js';
import { pairedRatios, parseSideBySideArgs, perServerCpuSecond, runBenchMain, runOnFreshTargets } from '../side-by-side.js';
import { startMeridian, type RunningTarget } from '../targets.js';
import { startOtlpSink } from './otlp-sink.js';

/**
 * Five rounds, each shorter than `pnpm bench`'s so that the run stays within minutes: a median of
 * five rounds' ratios outvotes two noisy rounds.
 */
const FULL_PLAN: Partial<BenchPlan> = { rounds: 5, blobMinSeconds: 3, requestRate: { ...fullPlan.requestRate, durationSeconds: 6 } };

const usage = `Usage: pnpm bench telemetry [--quick] [--rounds N] [--scenarios LIST]

  --quick       short smoke run (small counts, 1 round)
  --rounds N    rounds per scenario (default 5, quick 1); each round's on / off ratio is taken,
                and their median is the verdict
  --scenarios LIST  only these of manifest-get, push-small, pull-small, push-large, pull-large
  env BENCH_DATABASE_URL  the databases' base (default postgres://postgres@127.0.0.1:5432/meridian_bench;
                          the runs use <name>_otel_off and <name>_otel_on, dropped and recreated)`;

/** Scenario, figure, and the least share of the untraced figure the traced one must reach. */
const BUDGET: ReadonlyArray<{ scenario: ScenarioId; figure: string; atLeast: number }> = [
  { scenario: 'manifest-get', figure: 'rps', atLeast: 0.9 },
  { scenario: 'push-small', figure: 'mibps', atLeast: 0.95 },
  { scenario: 'pull-small', figure: 'mibps', atLeast: 0.95 },
  { scenario: 'push-large', figure: 'mibps', atLeast: 0.95 },
  { scenario: 'pull-large', figure: 'mibps', atLeast: 0.95 },
];

const tools = { wrk: '/usr/bin/wrk', ab: '/usr/bin/ab' };
const log = (message: string) => console.error(`bench telemetry: ${message}`);

async function main(): Promise<number> {
  const options = parseSideBySideArgs('telemetry', usage, FULL_PLAN);
  if (!options) return 0;
  const { plan } = options;
  const base = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/meridian_bench';

  const ticksPerSecond = readClockTicksPerSecond();
  log(`background load: ${await sampleBackgroundLoad(ticksPerSecond)}% of one core busy before starting anything`);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-bench-telemetry-'));
  const sink = await startOtlpSink();
  const targets: RunningTarget[] = [];
  try {
    const fixtureDir = path.join(workDir, 'fixtures');
    const smallBlobs = await writeBlobFiles(fixtureDir, 'small', plan.smallBlobs.count, plan.smallBlobs.sizeBytes, { keepInMemory: true });
    const largeBlobs = await writeBlobFiles(fixtureDir, 'large', plan.largeBlobs.count, plan.largeBlobs.sizeBytes, { keepInMemory: false });
    const scenarioDir = path.join(workDir, 'scenarios');
    await mkdir(scenarioDir, { recursive: true });
    const wanted = new Set<string>(options.scenarios ?? BUDGET.map((b) => b.scenario));
    const scenarios = createScenarios({ plan, smallBlobs, largeBlobs, tools, workDir: scenarioDir, ticksPerSecond }).filter((s) => wanted.has(s.id));

    // A fresh pair of gateways every round: two processes of one configuration differ by several
    // per cent in CPU per GET for their whole life, so one pair for the whole run would be one draw.
    const [off, on] = [
      { label: 'Meridian, telemetry off', suffix: 'otel_off', env: {} },
      { label: 'Meridian, telemetry on', suffix: 'otel_on', env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url } },
    ] as const;
    const startPair = async (round: number): Promise<RunningTarget[]> => {
      targets.length = 0;
      for (const { label, suffix, env } of [off, on]) {
        const dir = path.join(workDir, suffix);
        // The last round's blobs go with its gateway: the database they were listed in is dropped.
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        targets.push(await startMeridian({ databaseUrl: `${base}_${suffix}`, dataDir: path.join(dir, 'data'), label, env }));
        log(`round ${round}: ${targets.at(-1)!.label} at ${targets.at(-1)!.url}`);
      }
      return [...targets];
    };
    const runs = await runOnFreshTargets(scenarios, startPair, plan.rounds, log);

    let withinBudget = true;
    const spreads: string[] = [];
    console.log('| scenario | figure | telemetry off | telemetry on | on / off, median of rounds | rounds, least – most | budget | per server CPU-second, on / off |');
    console.log('|---|---|---:|---:|---:|---:|---|---:|');
    for (const { scenario, figure, atLeast } of BUDGET.filter((b) => wanted.has(b.scenario))) {
      const offRuns = runs.get(`${scenario} ${off.label}`) ?? [];
      const onRuns = runs.get(`${scenario} ${on.label}`) ?? [];
      const ratios = pairedRatios(offRuns, onRuns, (run) => run.figures[figure]);
      const cpuRatios = pairedRatios(offRuns, onRuns, perServerCpuSecond);
      const met = ratios !== undefined && ratios.median >= atLeast;
      withinBudget &&= met;
      const spread = ratios ? `${ratios.min.toFixed(3)} – ${ratios.max.toFixed(3)}` : '—';
      console.log(`| ${scenario} | ${figure} | ${medianFigure(offRuns, figure)?.toFixed(1) ?? '—'} | ${medianFigure(onRuns, figure)?.toFixed(1) ?? '—'} | ${ratios?.median.toFixed(3) ?? '—'} | ${spread} | ≥ ${atLeast} ${met ? 'met' : 'NOT met'} | ${cpuRatios?.median.toFixed(3) ?? '—'} |`);
      if (ratios) spreads.push(`${scenario}: ${ratios.rounds.map((r) => r.toFixed(3)).join(', ')}`);
    }
    console.log('');
    console.log(`On / off by round: ${spreads.join('; ')}`);
    console.log('');
    console.log(`OTLP receiver: ${sink.requests} exports, ${(sink.bytes / 2 ** 20).toFixed(1)} MiB of spans (${plan.rounds} round${plan.rounds === 1 ? '' : 's'})`);
    if (sink.requests === 0) {
      log('the traced gateway exported nothing: tracing did not start');
      return 1;
    }
    return withinBudget ? 0 : 1;
  } finally {
    // Left here only by a round that failed while starting its pair; runOnFreshTargets stops the rest.
    for (const target of targets.filter((t) => t.exitReport() === undefined)) await target.stop().catch((err: Error) => log(`could not stop ${target.label}: ${err.message}`));
    await sink.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

runBenchMain('bench telemetry', main);

import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';
import { fullPlan, quickPlan, type BenchPlan } from './bench-plan.js';
import { readClockTicksPerSecond } from './cpu.js';
import { writeBlobFiles } from './fixtures.js';
import { describeMachine, sampleBackgroundLoad } from './machine.js';
import { medianFigure, renderMarkdown, type BenchReport, type ScenarioOutcome } from './report.js';
import { createScenarios, scenarioIds, type RunResult, type Scenario, type ScenarioId } from './scenarios.js';
import {
  startDistribution,
  startMeridian,
  startNginx,
  startNodeStatic,
  targetNames,
  type RunningTarget,
  type TargetName,
} from './targets.js';

/**
 * `pnpm bench`: starts Meridian, CNCF Distribution, nginx and a bare Node file server on
 * loopback, drives them with the same client, interleaved, and prints one markdown table
 * comparing them. See `--help`.
 */

const usage = `Usage: pnpm bench [options]

  --quick                 short smoke run (small counts, 1 round), under a minute
  --targets LIST          comma list of ${targetNames.join(', ')} (default: all; env BENCH_TARGETS)
                          e.g. --targets distribution,nginx while the gateway is not ready
  --only LIST             same as --targets
  --scenarios LIST        run only these of ${scenarioIds.join(', ')}
  --rounds N              rounds per scenario (default 3, quick 1); the median is reported
  --json PATH             where to write the JSON results (default: a file under ${os.tmpdir()})
  --database-url URL      Meridian's bench database, dropped and recreated
                          (default postgres://postgres@127.0.0.1:5432/meridian_bench; env BENCH_DATABASE_URL)
  -h, --help`;

/** A bad command line: printed without a stack, with a pointer to --help. */
class UsageError extends Error {}

interface BenchOptions {
  quick: boolean;
  targets: TargetName[];
  /** Undefined: all of them. */
  scenarioIds: ScenarioId[] | undefined;
  plan: BenchPlan;
  jsonPath: string;
  databaseUrl: string;
}

function splitList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

const cliOptions = {
  quick: { type: 'boolean', default: false },
  targets: { type: 'string' },
  only: { type: 'string' },
  scenarios: { type: 'string' },
  rounds: { type: 'string' },
  json: { type: 'string' },
  'database-url': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions | undefined {
  // `pnpm bench -- --quick` passes the `--` through; parseArgs would end option parsing there.
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  let parsed;
  try {
    parsed = parseArgs({ args, options: cliOptions });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values } = parsed;
  if (values.help) return undefined;
  const requested = splitList(values.targets ?? values.only ?? env.BENCH_TARGETS ?? targetNames.join(','));
  for (const name of requested) {
    if (!(targetNames as readonly string[]).includes(name)) throw new UsageError(`unknown target ${name}; known: ${targetNames.join(', ')}`);
  }
  const scenarios = values.scenarios === undefined ? undefined : splitList(values.scenarios);
  for (const id of scenarios ?? []) {
    if (!(scenarioIds as readonly string[]).includes(id)) throw new UsageError(`unknown scenario ${id}; known: ${scenarioIds.join(', ')}`);
  }
  const plan = { ...(values.quick ? quickPlan : fullPlan) };
  if (values.rounds !== undefined) {
    plan.rounds = Number(values.rounds);
    if (!Number.isInteger(plan.rounds) || plan.rounds < 1) throw new UsageError('--rounds must be a positive integer');
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    quick: values.quick,
    // Keep the canonical order whatever order they were asked in.
    targets: targetNames.filter((name) => requested.includes(name)),
    scenarioIds: scenarios as ScenarioId[] | undefined,
    plan,
    jsonPath: values.json ?? path.join(os.tmpdir(), `meridian-bench-${stamp}.json`),
    databaseUrl: values['database-url'] ?? env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/meridian_bench',
  };
}

/** Stops what was started, newest first, once, whether the bench ended, failed or was interrupted. */
class Teardown {
  private readonly steps: Array<{ what: string; run: () => Promise<unknown> }> = [];
  private running: Promise<void> | undefined;

  add(what: string, run: () => Promise<unknown>): void {
    this.steps.push({ what, run });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        try {
          await step.run();
        } catch (err) {
          console.error(`bench: could not ${step.what}: ${(err as Error).message}`);
        }
      }
    })();
    return this.running;
  }
}

const tools = {
  distribution: '/usr/bin/docker-registry',
  nginx: '/usr/sbin/nginx',
  wrk: '/usr/bin/wrk',
  ab: '/usr/bin/ab',
};

function checkToolsInstalled(targets: TargetName[]): void {
  // Debian package names: wrk for GET rates, apache2-utils (ab) for HEAD, which wrk cannot do.
  const needed: Array<[string, string]> = [['wrk', tools.wrk], ['apache2-utils', tools.ab]];
  if (targets.includes('distribution')) needed.push(['docker-registry', tools.distribution]);
  if (targets.includes('nginx')) needed.push(['nginx', tools.nginx]);
  const missing = needed.filter(([, file]) => {
    try {
      accessSync(file, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    const packages = missing.map(([name]) => name).join(' ');
    throw new Error(`missing ${missing.map(([, file]) => file).join(', ')}: apt-get install -y ${packages}`);
  }
}

const log = (message: string) => console.error(`bench: ${message}`);

function describeRun(run: RunResult): string {
  const figures = Object.entries(run.figures)
    .map(([key, value]) => `${key} ${value.toFixed(value < 10 ? 2 : 0)}`)
    .join(', ');
  const pct = (s: number | undefined) => (s === undefined ? '' : `${Math.round((s / run.wallSeconds) * 100)}%`);
  const db = run.databaseCpuSeconds === undefined ? '' : `, postgres ${pct(run.databaseCpuSeconds)}`;
  return `${figures} (${run.wallSeconds.toFixed(1)} s; cpu client ${pct(run.clientCpuSeconds)}, server ${pct(run.serverCpuSeconds)}${db}, machine ${pct(run.machineCpuSeconds)})`;
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 1_500);
}

/** Lets the kernel write back what the previous run left dirty, so it does not land on the next. */
async function settle(): Promise<void> {
  await promisify(execFile)('sync');
  await sleep(250);
}

async function startTargets(options: BenchOptions, workDir: string, fixtureDir: string, teardown: Teardown): Promise<RunningTarget[]> {
  const running: RunningTarget[] = [];
  for (const name of options.targets) {
    const dir = path.join(workDir, name);
    await mkdir(dir, { recursive: true });
    log(`starting ${name}`);
    let target: RunningTarget;
    if (name === 'distribution') target = await startDistribution({ binary: tools.distribution, workDir: dir });
    else if (name === 'nginx') target = await startNginx({ binary: tools.nginx, workDir: dir, rootDir: fixtureDir });
    else if (name === 'node-static') target = await startNodeStatic({ rootDir: fixtureDir });
    else {
      try {
        target = await startMeridian({ databaseUrl: options.databaseUrl, dataDir: path.join(dir, 'data') });
      } catch (err) {
        throw new Error(`Meridian did not start (run with --targets distribution,nginx to bench without it): ${(err as Error).message}`);
      }
    }
    teardown.add(`stop ${name}`, () => target.stop());
    log(`${target.label} at ${target.url} (pid ${target.pid})`);
    running.push(target);
  }
  return running;
}

/**
 * Prepares every target that takes part, then runs the rounds, interleaved: each round runs
 * every target once, the order reversed every other round so neither target always runs on a
 * machine the other has just warmed (or dirtied). A target that fails drops out of the scenario
 * and the failure is reported; the others go on.
 */
async function runScenario(scenario: Scenario, targets: RunningTarget[], rounds: number, interrupted: AbortSignal): Promise<ScenarioOutcome> {
  const outcome: ScenarioOutcome = { scenario, runs: {}, failures: {} };
  const fail = (target: RunningTarget, when: string, err: unknown) => {
    const exited = target.exitReport();
    const message = `${when}: ${oneLine(err)}${exited ? ` [${oneLine(exited)}]` : ''}`;
    outcome.failures[target.name] = message;
    log(`[${scenario.id}] ${target.label} failed, ${message}`);
  };
  const participants = targets.filter((t) => t.kind === 'registry' || scenario.includesStatic);
  for (const target of participants) {
    try {
      if (target.exitReport()) throw new Error(`${target.label} is not running`);
      await scenario.prepare?.(target);
    } catch (err) {
      fail(target, 'prepare', err);
    }
  }
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? participants : [...participants].reverse();
    for (const target of order) {
      interrupted.throwIfAborted();
      if (outcome.failures[target.name]) continue;
      await settle();
      try {
        const run = await scenario.run(target, round);
        (outcome.runs[target.name] ??= []).push(run);
        log(`[${scenario.id}] round ${round}/${rounds} ${target.label}: ${describeRun(run)}`);
      } catch (err) {
        fail(target, `round ${round}`, err);
      }
    }
  }
  return outcome;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2), process.env);
  if (!options) {
    console.log(usage);
    return 0;
  }
  checkToolsInstalled(options.targets);
  const teardown = new Teardown();
  const interrupted = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted.signal.aborted) return;
    interrupted.abort(new Error(`interrupted by ${signal}`));
    log(`${signal}: stopping everything`);
    void teardown.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  // `on`, not `once`: tsx relays a Ctrl-C to this process a second time when it is slow to
  // acknowledge the first, and with no listener left its own handler would exit at once,
  // leaving the servers and the temp dir behind.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const startedAt = new Date().toISOString();
    const { plan } = options;
    const ticksPerSecond = readClockTicksPerSecond();
    const backgroundLoadPercent = await sampleBackgroundLoad(ticksPerSecond);
    log(`background load: ${backgroundLoadPercent}% of one core busy before starting anything`);
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-bench-'));
    teardown.add(`remove ${workDir}`, () => rm(workDir, { recursive: true, force: true }));
    const fixtureDir = path.join(workDir, 'fixtures');

    const selected = (id: ScenarioId) => !options.scenarioIds || options.scenarioIds.includes(id);
    log(`writing fixtures under ${fixtureDir}`);
    // Only the blobs a selected scenario pushes or pulls: the large set is a GiB to write.
    const needs = (ids: ScenarioId[]) => ids.some(selected);
    const smallCount = needs(['push-small', 'pull-small', 'pull-small-wrk', 'push-small-skopeo', 'pull-small-fresh']) ? plan.smallBlobs.count : 0;
    const largeCount = needs(['push-large', 'pull-large', 'pull-large-wrk', 'push-large-skopeo', 'pull-large-fresh']) ? plan.largeBlobs.count : 0;
    const smallBlobs = await writeBlobFiles(fixtureDir, 'small', smallCount, plan.smallBlobs.sizeBytes, { keepInMemory: true });
    const largeBlobs = await writeBlobFiles(fixtureDir, 'large', largeCount, plan.largeBlobs.sizeBytes, { keepInMemory: false });

    const targets = await startTargets(options, workDir, fixtureDir, teardown);
    const scenarioDir = path.join(workDir, 'scenarios');
    await mkdir(scenarioDir, { recursive: true });
    const scenarios = createScenarios({
      plan,
      smallBlobs,
      largeBlobs,
      tools,
      workDir: scenarioDir,
      ticksPerSecond,
    }).filter((s) => selected(s.id));

    const outcomes: ScenarioOutcome[] = [];
    for (const scenario of scenarios) {
      interrupted.signal.throwIfAborted();
      outcomes.push(await runScenario(scenario, targets, plan.rounds, interrupted.signal));
    }

    const report: BenchReport = {
      startedAt,
      machine: describeMachine(tools),
      plan,
      quick: options.quick,
      targets: targets.map((t) => t.name),
      backgroundLoadPercent,
      outcomes,
    };
    const medians = outcomes.map((o) => ({
      id: o.scenario.id,
      figures: Object.fromEntries(
        o.scenario.figures.map((f) => [f.key, Object.fromEntries(targets.map((t) => [t.name, medianFigure(o.runs[t.name], f.key)]))]),
      ),
    }));
    await writeFile(options.jsonPath, JSON.stringify({ ...report, medians }, null, 2));
    console.log(renderMarkdown(report));
    console.log('');
    console.log(`JSON results: ${options.jsonPath}`);
    return outcomes.some((o) => Object.keys(o.failures).length > 0) ? 1 : 0;
  } finally {
    await teardown.run();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const interrupted = err instanceof Error && err.message.startsWith('interrupted by');
    if (err instanceof UsageError) console.error(`bench: ${err.message} (see --help)`);
    else if (!interrupted) console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);

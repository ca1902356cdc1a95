/**
 * What the benches that compare Meridian with Meridian share (`pnpm bench telemetry`, `pnpm bench
 * auth`): their options, the interleaved rounds, the per-CPU figure and how the command ends.
 */
import { parseArgs } from 'node:util';
import { fullPlan, quickPlan, type BenchPlan } from './bench-plan.js';
import { median } from './report.js';
import type { RunResult, Scenario } from './scenarios.js';
import type { RunningTarget } from './targets.js';

export interface SideBySideOptions {
  plan: BenchPlan;
  /** `--scenarios`, split; undefined: every one the bench budgets. */
  scenarios: string[] | undefined;
}

/**
 * `--quick`, `--rounds N`, `--scenarios LIST`, `--help` (prints `usage`; undefined then). `full`
 * changes the full plan for this bench (more, shorter rounds, say); `--quick` keeps the quick plan.
 */
export function parseSideBySideArgs(command: string, usage: string, full: Partial<BenchPlan> = {}): SideBySideOptions | undefined {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((arg) => arg !== '--' && arg !== command),
    options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' }, scenarios: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    console.log(usage);
    return undefined;
  }
  const plan = { ...(values.quick ? quickPlan : { ...fullPlan, ...full }) };
  if (values.rounds !== undefined) plan.rounds = Number(values.rounds);
  if (!Number.isInteger(plan.rounds) || plan.rounds < 1) throw new Error('--rounds takes a whole number from 1');
  return { plan, scenarios: values.scenarios?.split(',') };
}

/**
 * Each scenario prepared on every target, then run `rounds` times over the targets, the order
 * reversed every other round so neither side always runs on the warmer machine. The runs are
 * keyed `"<scenario id> <target label>"`.
 */
export async function runInterleaved(scenarios: Scenario[], targets: RunningTarget[], rounds: number, log: (message: string) => void): Promise<Map<string, RunResult[]>> {
  const runs = new Map<string, RunResult[]>();
  for (const scenario of scenarios) {
    for (const target of targets) await scenario.prepare?.(target);
    for (let round = 1; round <= rounds; round++) await runRound(scenario, targets, round, rounds, runs, log);
  }
  return runs;
}

/** One round of a scenario on every target, the order reversed on even rounds; runs kept in `runs`. */
async function runRound(scenario: Scenario, targets: RunningTarget[], round: number, rounds: number, runs: Map<string, RunResult[]>, log: (message: string) => void): Promise<void> {
  for (const target of round % 2 === 1 ? targets : [...targets].reverse()) {
    const run = await scenario.run(target, round);
    const key = `${scenario.id} ${target.label}`;
    runs.set(key, [...(runs.get(key) ?? []), run]);
    log(`[${scenario.id}] round ${round}/${rounds} ${target.label}: ${Object.entries(run.figures).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}, ${perServerCpuSecond(run).toFixed(0)} per server CPU-second`);
  }
}

/**
 * Like runInterleaved, but every round on targets of its own: `startTargets` starts them, each
 * scenario is prepared on them and run once per target (the order reversed every other round),
 * and they are stopped before the next round starts. Two gateway processes of one build and one
 * configuration can differ in CPU per request by several per cent for their whole life (code
 * placement, what the JIT made of them), so a comparison of one process pair measures that pair;
 * a fresh pair a round makes it one more round's noise, which the median of the rounds outvotes.
 */
export async function runOnFreshTargets(
  scenarios: Scenario[],
  startTargets: (round: number) => Promise<RunningTarget[]>,
  rounds: number,
  log: (message: string) => void,
): Promise<Map<string, RunResult[]>> {
  const runs = new Map<string, RunResult[]>();
  for (let round = 1; round <= rounds; round++) {
    const targets = await startTargets(round);
    try {
      for (const scenario of scenarios) {
        for (const target of targets) await scenario.prepare?.(target);
        await runRound(scenario, targets, round, rounds, runs, log);
      }
    } finally {
      for (const target of targets) await target.stop();
    }
  }
  return runs;
}

/**
 * Work done per second of the gateway's CPU (requests, or MiB): what a feature costs the server
 * itself, which other load on a shared machine moves far less than it moves the rates.
 */
export function perServerCpuSecond(run: RunResult): number {
  const work = run.details.requests ?? (run.details.bytes ?? 0) / 2 ** 20;
  return work / run.serverCpuSeconds;
}

/** One side's figure over the other's, round by round, and their median. */
export interface PairedRatios {
  /** Each round's ratio, in round order; a round lacking the figure on either side is left out. */
  rounds: number[];
  median: number;
  min: number;
  max: number;
}

/**
 * `figureOf(on[i]) / figureOf(off[i])` for each round `i` (runInterleaved's runs, the two sides of a
 * round run back to back), and the median of those ratios. On a shared machine the load moves
 * from one round to the next by more than a feature costs; within one round both sides see
 * nearly the same machine, so the round's ratio is the steadier figure, and the median over
 * rounds is what one noisy round cannot decide. Undefined when no round has both figures.
 */
export function pairedRatios(off: RunResult[], on: RunResult[], figureOf: (run: RunResult) => number | undefined): PairedRatios | undefined {
  const rounds: number[] = [];
  for (let i = 0; i < Math.min(off.length, on.length); i++) {
    const without = figureOf(off[i]!);
    const traced = figureOf(on[i]!);
    if (without && traced !== undefined) rounds.push(traced / without);
  }
  const middle = median(rounds);
  return middle === undefined ? undefined : { rounds, median: middle, min: Math.min(...rounds), max: Math.max(...rounds) };
}

/** Runs a bench's `main`, its answer the exit code; a failure is printed with the bench's name. */
export function runBenchMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exitCode = 1;
    },
  );
}

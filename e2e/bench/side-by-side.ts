/**
 * What the benches that compare Meridian with Meridian share (`pnpm bench telemetry`, `pnpm bench
 * auth`): their options, the interleaved rounds, the per-CPU figure and how the command ends.
 */
import { parseArgs } from 'node:util';
import { fullPlan, quickPlan, type BenchPlan } from './bench-plan.js';
import type { RunResult, Scenario } from './scenarios.js';
import type { RunningTarget } from './targets.js';

export interface SideBySideOptions {
  plan: BenchPlan;
  /** `--scenarios`, split; undefined: every one the bench budgets. */
  scenarios: string[] | undefined;
}

/** `--quick`, `--rounds N`, `--scenarios LIST`, `--help` (prints `usage`; undefined then). */
export function parseSideBySideArgs(command: string, usage: string): SideBySideOptions | undefined {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((arg) => arg !== '--' && arg !== command),
    options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' }, scenarios: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    console.log(usage);
    return undefined;
  }
  const plan = { ...(values.quick ? quickPlan : fullPlan) };
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
    for (let round = 1; round <= rounds; round++) {
      for (const target of round % 2 === 1 ? targets : [...targets].reverse()) {
        const run = await scenario.run(target, round);
        const key = `${scenario.id} ${target.label}`;
        runs.set(key, [...(runs.get(key) ?? []), run]);
        log(`[${scenario.id}] round ${round}/${rounds} ${target.label}: ${Object.entries(run.figures).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}, ${perServerCpuSecond(run).toFixed(0)} per server CPU-second`);
      }
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

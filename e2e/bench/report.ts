import type { BenchPlan } from './bench-plan.js';
import type { MachineInfo } from './machine.js';
import type { FigureSpec, RunResult, Scenario } from './scenarios.js';
import { targetNames, type TargetName } from './targets.js';

/** Turns the rounds of every scenario into the markdown tables printed at the end. */

export interface ScenarioOutcome {
  scenario: Pick<Scenario, 'id' | 'title' | 'includesStatic' | 'figures'>;
  /** Every round's result, per target that took part. */
  runs: Partial<Record<TargetName, RunResult[]>>;
  /** Why a target dropped out of this scenario (its prepare or a run threw). */
  failures: Partial<Record<TargetName, string>>;
}

export interface BenchReport {
  startedAt: string;
  machine: MachineInfo;
  plan: BenchPlan;
  quick: boolean;
  targets: TargetName[];
  /** % of one core busy on the machine in the second before the bench started anything. */
  backgroundLoadPercent: number;
  outcomes: ScenarioOutcome[];
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function medianFigure(runs: RunResult[] | undefined, key: string): number | undefined {
  return median((runs ?? []).map((run) => run.figures[key]).filter((v): v is number => v !== undefined));
}

function format(value: number | undefined, decimals: number): string {
  return value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(decimals);
}

function ratio(numerator: number | undefined, denominator: number | undefined): string {
  if (numerator === undefined || denominator === undefined || denominator === 0) return '—';
  return `${(numerator / denominator).toFixed(2)}×`;
}

function percentOfCore(cpuSeconds: number | undefined, wallSeconds: number): string {
  if (cpuSeconds === undefined || wallSeconds <= 0) return '—';
  return `${Math.round((cpuSeconds / wallSeconds) * 100)}%`;
}

function figureRow(outcome: ScenarioOutcome, figure: FigureSpec): string {
  const value = (target: TargetName) => medianFigure(outcome.runs[target], figure.key);
  const cell = (target: TargetName, v: number | undefined) =>
    v === undefined && outcome.failures[target] ? 'failed' : format(v, figure.decimals);
  const meridian = value('meridian');
  const distribution = value('distribution');
  const nginx = outcome.scenario.includesStatic ? value('nginx') : undefined;
  const nodeStatic = outcome.scenario.includesStatic ? value('node-static') : undefined;
  const label = figure.higherIsBetter || figure.informational ? figure.label : `${figure.label} ↓`;
  const cells = [
    label,
    cell('meridian', meridian),
    cell('distribution', distribution),
    figure.informational ? '' : ratio(meridian, distribution),
    outcome.scenario.includesStatic ? cell('nginx', nginx) : '',
    outcome.scenario.includesStatic ? ratio(meridian, nginx) : '',
    outcome.scenario.includesStatic ? cell('node-static', nodeStatic) : '',
    outcome.scenario.includesStatic ? ratio(nodeStatic, nginx) : '',
  ];
  return `| ${cells.join(' | ')} |`;
}

/**
 * One CPU row per scenario and target, from the median-throughput round. The client is flagged
 * when it burnt more CPU than the server, when it ran at nearly all the cores its threads can
 * use (then it, not the server, set the pace), or when the two together had the machine's cores
 * nearly full (then neither figure is the server's ceiling).
 */
function cpuRow(outcome: ScenarioOutcome, target: TargetName, label: string, cores: number): string | undefined {
  const runs = outcome.runs[target];
  if (!runs || runs.length === 0) return undefined;
  const key = outcome.scenario.figures[0]!.key;
  const sorted = [...runs].sort((a, b) => (a.figures[key] ?? 0) - (b.figures[key] ?? 0));
  const run = sorted[(sorted.length - 1) >> 1]!;
  const ours = run.clientCpuSeconds + run.serverCpuSeconds + (run.databaseCpuSeconds ?? 0);
  // Clamped: the counters are read at slightly different instants and tick at 10 ms.
  const other = Math.max(0, run.machineCpuSeconds - ours);
  const notes: string[] = [];
  if (run.clientCpuSeconds > run.serverCpuSeconds + (run.databaseCpuSeconds ?? 0)) notes.push('client used more CPU than server');
  // A client at (nearly) all the cores its threads can use sets the pace itself.
  if (run.clientCpuSeconds / run.wallSeconds >= 0.9 * (run.clientThreads ?? 1)) notes.push('client saturated');
  if (run.machineCpuSeconds / run.wallSeconds >= cores * 0.9) notes.push('cores saturated');
  if (other / run.wallSeconds >= 0.2) {
    const who = run.otherProcesses
      .filter((p) => p.seconds / run.wallSeconds >= 0.05)
      .map((p) => `${p.comm} ${percentOfCore(p.seconds, run.wallSeconds)}`)
      .join(', ');
    notes.push(`other load on the machine${who ? ` (${who})` : ''}`);
  }
  const pct = (seconds: number | undefined) => percentOfCore(seconds, run.wallSeconds);
  return `| ${outcome.scenario.title} | ${label} | ${run.wallSeconds.toFixed(1)} | ${pct(run.clientCpuSeconds)} | ${pct(run.serverCpuSeconds)} | ${pct(run.databaseCpuSeconds)} | ${pct(other)} | ${notes.join('; ')} |`;
}

const targetLabels: Record<TargetName, string> = {
  meridian: 'Meridian',
  distribution: 'Distribution',
  nginx: 'nginx',
  'node-static': 'Node static',
};

export function renderMarkdown(report: BenchReport): string {
  const { machine, plan } = report;
  const lines: string[] = [];
  // Named after the targets that ran: a run of Meridian alone is not "vs Distribution".
  const heading = report.targets.map((target) => targetLabels[target]).join(' vs ');
  lines.push(`### ${heading}${report.quick ? ' (quick smoke run: small counts, not for quoting)' : ''}`);
  lines.push('');
  lines.push(
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.totalMemoryGiB} GiB RAM, ${machine.kernel}; ` +
      `Node ${machine.node}; ${machine.distribution}; ${machine.nginx}; ${machine.wrk}; ${machine.ab}.`,
  );
  lines.push(
    `Method: loopback only, client and servers sharing the ${machine.cpus} cores. Each scenario runs ${plan.rounds} ` +
      `round(s); in each round every target runs once, in alternating order (A B, then B A, …); each figure is the ` +
      `median of its rounds. Manifest GET uses wrk (${plan.requestRate.threads} thread) and blob HEAD uses ab ` +
      `(wrk hangs on HEAD responses, wg/wrk#198), both with ${plan.requestRate.connections} keep-alive connections, ` +
      `${plan.requestRate.warmupSeconds} s warm-up then ${plan.requestRate.durationSeconds} s; the rest use an undici ` +
      `client in Node, each blob push/pull run repeating its batch until ${plan.blobMinSeconds} s have passed. ` +
      `Targets: ${report.targets.join(', ')}.`,
  );
  lines.push(
    `Background load when the bench started: ${report.backgroundLoadPercent}% of one core busy` +
      (report.backgroundLoadPercent >= 20 ? ' (other sessions were using this machine: expect noisy figures).' : '.'),
  );
  lines.push('');
  lines.push('| figure | Meridian | Distribution | Meridian / Distribution | nginx | Meridian / nginx | Node static | Node static / nginx |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|');
  for (const outcome of report.outcomes) {
    for (const figure of outcome.scenario.figures) lines.push(figureRow(outcome, figure));
  }
  lines.push('');
  lines.push(
    '↓: lower is better. Ratios above 1× mean Meridian\'s figure is the larger one. Node static: a bare ' +
      'node:http server sending the same files with Meridian\'s copy code and worker count, no registry ' +
      'around it (what Node can do without sendfile).',
  );
  lines.push('');
  lines.push(
    `CPU during the measured part of the median round, as % of one core (${machine.cpus * 100}% = all cores). ` +
      'Client: this Node process, or wrk/ab for the request-rate rows. Server: the target\'s process tree. ' +
      'Postgres: every postgres process on the machine (Meridian only). Other: the rest of the ' +
      'machine\'s busy time (other sessions share it).',
  );
  lines.push('');
  lines.push('| scenario | target | wall s | client CPU | server CPU | Postgres CPU | other CPU | note |');
  lines.push('|---|---|--:|--:|--:|--:|--:|---|');
  for (const outcome of report.outcomes) {
    for (const target of targetNames) {
      const row = cpuRow(outcome, target, targetLabels[target], machine.cpus);
      if (row) lines.push(row);
    }
  }
  const warnings = report.outcomes.flatMap((outcome) =>
    Object.entries(outcome.runs).flatMap(([target, runs]) =>
      (runs ?? []).flatMap((run, round) => run.warnings.map((w) => `- ${outcome.scenario.id}, ${target}, round ${round + 1}: ${w}`)),
    ),
  );
  if (warnings.length > 0) {
    lines.push('');
    lines.push('Warnings:');
    lines.push(...warnings);
  }
  const failures = report.outcomes.flatMap((outcome) =>
    Object.entries(outcome.failures).map(([target, message]) => `- ${outcome.scenario.id}, ${target}: ${message}`),
  );
  if (failures.length > 0) {
    lines.push('');
    lines.push('Failures (the target dropped out of that scenario):');
    lines.push(...failures);
  }
  return lines.join('\n');
}

import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of other processes, read from /proc/<pid>/stat, so the report can tell whether the
 * client or the server was the one out of CPU on a run (this machine has two cores, shared).
 */

/** The kernel's unit for the stat times; getconf asks rather than assuming the usual 100. */
export function readClockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

interface ProcessStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
  /** utime + stime alone: the process's own time, without that of children it reaped. */
  ownTicks: number;
}

function readProcessStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between listing and reading
  }
  // comm sits in parentheses and may itself hold spaces or parentheses: split at the last ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const comm = text.slice(open + 1, close);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is stat field 3 (state); utime..cstime are stat fields 14..17.
  const num = (statField: number) => Number(fields[statField - 3] ?? 0);
  // cutime/cstime hold the time of children the process has reaped, so a worker or backend that
  // exits mid-run keeps counting through its parent instead of vanishing from the sum.
  return { pid, ppid: num(4), comm, ticks: num(14) + num(15) + num(16) + num(17), ownTicks: num(14) + num(15) };
}

function readAllProcessStats(): ProcessStat[] {
  const stats: ProcessStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcessStat(Number(entry));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** Ticks per process of the tree rooted at `rootPid` (the root and all its descendants). */
function snapshotProcessTree(rootPid: number, stats = readAllProcessStats()): Map<number, number> {
  const children = new Map<number, ProcessStat[]>();
  for (const stat of stats) {
    const list = children.get(stat.ppid) ?? [];
    list.push(stat);
    children.set(stat.ppid, list);
  }
  const snapshot = new Map<number, number>();
  const root = stats.find((stat) => stat.pid === rootPid);
  const queue = root ? [root] : [];
  while (queue.length > 0) {
    const stat = queue.shift()!;
    snapshot.set(stat.pid, stat.ticks);
    queue.push(...(children.get(stat.pid) ?? []));
  }
  return snapshot;
}

/** The pids of the tree rooted at `rootPid`: the root and all its descendants (a supervisor and its workers). */
export function processTree(rootPid: number): number[] {
  return [...snapshotProcessTree(rootPid).keys()];
}

/** Ticks per process whose comm is `comm` (Postgres backends keep comm "postgres"). */
function snapshotByCommand(comm: string, stats = readAllProcessStats()): Map<number, number> {
  const snapshot = new Map<number, number>();
  for (const stat of stats) if (stat.comm === comm) snapshot.set(stat.pid, stat.ticks);
  return snapshot;
}

/**
 * Sum after minus sum before, not a per-pid difference: a process that exited in between has
 * moved its whole time into its parent's cutime, which is in the "after" sum, so its "before"
 * share has to come off the total.
 */
function ticksBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const end of after.values()) ticks += end;
  for (const start of before.values()) ticks -= start;
  return ticks;
}

/**
 * Busy ticks of the whole machine, all CPUs, from the first line of /proc/stat: everything but
 * idle and iowait. Other sessions share this machine; what is left after the client and server
 * are taken off is their weight on a run.
 */
export function readMachineBusyTicks(): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, ...counters] = first.trim().split(/\s+/);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = counters.map(Number);
  return user + nice + system + irq + softirq + steal;
}

/** What a CPU meter saw between start and stop, in CPU seconds. */
export interface CpuReading {
  /** The server process tree (the target's pid and its descendants). */
  serverSeconds: number;
  /** All `postgres` processes on the machine, or undefined when the target has no database. */
  databaseSeconds: number | undefined;
  /** Every process on the machine, the client and the server included. */
  machineSeconds: number;
  /** The processes, neither this one nor the server's, that used the most CPU meanwhile. */
  otherProcesses: OtherProcessCpu[];
}

export interface OtherProcessCpu {
  pid: number;
  comm: string;
  seconds: number;
}

export interface CpuMeterOptions {
  serverPid: number;
  /** Also count Postgres: Meridian's metadata lives there, Distribution's does not. */
  countPostgres: boolean;
  ticksPerSecond: number;
}

/** Starts measuring now; call the returned function to stop and read. */
export function startCpuMeter(opts: CpuMeterOptions): () => CpuReading {
  const allBefore = readAllProcessStats();
  const serverBefore = snapshotProcessTree(opts.serverPid, allBefore);
  const databaseBefore = opts.countPostgres ? snapshotByCommand('postgres', allBefore) : undefined;
  const machineBefore = readMachineBusyTicks();
  return () => {
    const machineTicks = readMachineBusyTicks() - machineBefore;
    const allAfter = readAllProcessStats();
    const serverAfter = snapshotProcessTree(opts.serverPid, allAfter);
    const serverTicks = ticksBetween(serverBefore, serverAfter);
    const databaseAfter = databaseBefore ? snapshotByCommand('postgres', allAfter) : undefined;
    const databaseTicks = databaseBefore && databaseAfter ? ticksBetween(databaseBefore, databaseAfter) : undefined;
    // This process holds the client's CPU, and that of load generators it has reaped.
    const accounted = new Set([process.pid, ...serverAfter.keys(), ...(databaseAfter?.keys() ?? [])]);
    // Own time only: a shell that reaps a long test run would otherwise show that run's whole
    // CPU, most of it spent before the window.
    const ownTicksBefore = new Map(allBefore.map((stat) => [stat.pid, stat.ownTicks]));
    const otherProcesses = allAfter
      .filter((stat) => !accounted.has(stat.pid))
      .map((stat) => ({ pid: stat.pid, comm: stat.comm, seconds: (stat.ownTicks - (ownTicksBefore.get(stat.pid) ?? 0)) / opts.ticksPerSecond }))
      .filter((other) => other.seconds > 0)
      .sort((a, b) => b.seconds - a.seconds)
      .slice(0, 3);
    return {
      serverSeconds: serverTicks / opts.ticksPerSecond,
      databaseSeconds: databaseTicks === undefined ? undefined : databaseTicks / opts.ticksPerSecond,
      machineSeconds: machineTicks / opts.ticksPerSecond,
      otherProcesses,
    };
  };
}

export interface TimedChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The child's user + system CPU seconds over its whole life. */
  cpuSeconds: number;
}

/** Parses bash `times` output: its last line is the reaped children's "XmY.YYYs XmY.YYYs". */
function parseChildTimes(timesOutput: string): number {
  const lines = timesOutput.trim().split('\n');
  let seconds = 0;
  for (const match of (lines[lines.length - 1] ?? '').matchAll(/(\d+)m([\d.]+)s/g)) {
    seconds += Number(match[1]) * 60 + Number(match[2]);
  }
  return seconds;
}

const timesMarker = '--- meridian-bench times ---';

/**
 * Runs a load generator and reports the CPU it used. bash runs it as a child and its `times`
 * builtin prints the CPU of reaped children on exit: the figure /proc can no longer give once the
 * process is gone, read without racing its exit.
 */
export async function runTimedChild(binary: string, args: string[]): Promise<TimedChildResult> {
  const script = `"$0" "$@"; status=$?; echo '${timesMarker}' >&2; times >&2; exit $status`;
  const child = spawn('bash', ['-c', script, binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const cut = stderr.lastIndexOf(timesMarker);
  return {
    code,
    stdout,
    stderr: cut >= 0 ? stderr.slice(0, cut) : stderr,
    cpuSeconds: cut >= 0 ? parseChildTimes(stderr.slice(cut + timesMarker.length)) : Number.NaN,
  };
}

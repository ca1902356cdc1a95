import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { runTimedChild } from './cpu.js';
import type { LoadRunOptions, LoadRunResult } from './load-run.js';

/**
 * Runs ApacheBench for the blob HEAD scenario, since wrk cannot do HEAD (see wrk.ts). ab is also
 * a single-threaded C client; it sends HTTP/1.0 with `Connection: Keep-Alive` (-k), which every
 * HTTP/1.1 server honours. Percentiles come from its -e CSV, which has microsecond resolution
 * where the human summary rounds to whole milliseconds.
 */

/** ab allocates a record per request up front (-n); this bounds it while never ending a run early. */
const maxRequestsPerSecond = 100_000;

function numberAfter(label: string, text: string): number | undefined {
  const match = new RegExp(`^${label}:\\s+([\\d.]+)`, 'm').exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

export async function runAb(binary: string, opts: LoadRunOptions): Promise<LoadRunResult> {
  const csvPath = path.join(opts.workDir, 'ab-percentiles.csv');
  const args = [
    '-q',
    '-k',
    '-c', String(opts.connections),
    '-t', String(opts.durationSeconds),
    '-n', String(maxRequestsPerSecond * opts.durationSeconds),
    '-s', '10',
    '-e', csvPath,
  ];
  if (opts.method === 'HEAD') args.push('-i');
  for (const [name, value] of Object.entries(opts.headers)) args.push('-H', `${name}: ${value}`);
  args.push(opts.url);
  const child = await runTimedChild(binary, args);
  const out = child.stdout;
  const requests = numberAfter('Complete requests', out);
  const durationSeconds = numberAfter('Time taken for tests', out);
  if (child.code !== 0 || requests === undefined || durationSeconds === undefined) {
    throw new Error(`ab exited ${child.code} without a result:\n${out}\n${child.stderr}`);
  }
  const percentiles = new Map<number, number>();
  for (const line of (await readFile(csvPath, 'utf8')).split('\n').slice(1)) {
    const [percent, ms] = line.split(',').map(Number);
    if (percent !== undefined && ms !== undefined && Number.isFinite(ms)) percentiles.set(percent, ms);
  }
  return {
    tool: 'ab',
    requests,
    durationSeconds,
    requestsPerSecond: durationSeconds > 0 ? requests / durationSeconds : 0,
    latencyP50Ms: percentiles.get(50) ?? Number.NaN,
    latencyP99Ms: percentiles.get(99) ?? Number.NaN,
    errors: {
      // "Failed requests" counts connect, receive, length and exception failures.
      socket: numberAfter('Failed requests', out) ?? 0,
      timeout: 0,
      status: numberAfter('Non-2xx responses', out) ?? 0,
    },
    clientCpuSeconds: child.cpuSeconds,
  };
}

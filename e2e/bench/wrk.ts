import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runTimedChild } from './cpu.js';
import type { LoadRunOptions, LoadRunResult } from './load-run.js';

/**
 * Runs wrk (a C load generator, far cheaper per request than a Node client) for GET request-rate
 * scenarios. Its Lua `done` hook prints one machine-readable line, so nothing here depends on the
 * layout of wrk's human summary.
 *
 * Not for HEAD: wrk's response parser waits for the body a HEAD response's Content-Length
 * announces (wg/wrk#198, open), so every HEAD stalls until the timeout. ab.ts covers HEAD.
 */

const resultMarker = 'MERIDIAN_BENCH_WRK';
/** util-linux's taskset, which runs wrk on the CPUs a run names (LoadRunOptions.cpus). */
const TASKSET = '/usr/bin/taskset';

function luaString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function luaScript(headers: Record<string, string>, paths: readonly string[] | undefined, pauseMs: number | undefined): string {
  const headerLines = Object.entries(headers)
    .map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`)
    .join('\n');
  // Each thread has its own Lua state, so each walks the list from its own start.
  const rotation = paths
    ? `paths = { ${paths.map(luaString).join(', ')} }
next_path = 0
request = function()
  next_path = next_path % #paths + 1
  return wrk.format(nil, paths[next_path])
end
`
    : '';
  // Pauses drawn at random (exponentially, so each connection's requests arrive as a Poisson
  // process, as independent clients' do), not all of one length: wrk starts every connection at
  // once, and with equal pauses they stay in step, so the server met bursts of 64 requests at
  // once and the p99 was the time to work through a burst (64 × the time per request), not the
  // time of one request. wrk also waits one pause before each connection's first request, which
  // spreads the start. Seeded per thread: LuaJIT would give every thread the same sequence.
  const pause =
    pauseMs === undefined
      ? ''
      : `threads_set_up = 0
setup = function(thread)
  threads_set_up = threads_set_up + 1
  thread:set("seed", threads_set_up)
end
init = function(args)
  math.randomseed(os.time() * 131 + seed)
end
delay = function()
  return math.min(${Math.round(pauseMs * 10)}, math.floor(-math.log(1 - math.random()) * ${Math.round(pauseMs)}))
end
`;
  // %.0f rather than %d: wrk hands counters over as Lua numbers (doubles under LuaJIT).
  return `wrk.method = "GET"
${headerLines}
${rotation}${pause}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "${resultMarker} %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write, e.timeout, e.status, summary.bytes))
end
`;
}

export async function runWrk(binary: string, opts: LoadRunOptions): Promise<LoadRunResult> {
  if (opts.method !== 'GET') throw new Error(`wrk cannot drive ${opts.method} (wg/wrk#198); use ab`);
  const scriptPath = path.join(opts.workDir, 'wrk-get.lua');
  await writeFile(scriptPath, luaScript(opts.headers, opts.paths, opts.pauseMs));
  const pinned = opts.cpus === undefined ? [] : ['-c', opts.cpus, binary];
  const child = await runTimedChild(opts.cpus === undefined ? binary : TASKSET, [
    ...pinned,
    '--threads', String(opts.threads),
    '--connections', String(opts.connections),
    '--duration', `${opts.durationSeconds}s`,
    '--timeout', '10s',
    '--latency',
    '--script', scriptPath,
    opts.url,
  ]);
  const line = child.stdout.split('\n').find((l) => l.startsWith(resultMarker));
  if (child.code !== 0 || !line) throw new Error(`wrk exited ${child.code} without a result:\n${child.stdout}\n${child.stderr}`);
  const [requests = 0, durationUs = 0, p50Us = 0, p99Us = 0, socketErrors = 0, timeouts = 0, badStatus = 0, bytes = 0] = line
    .slice(resultMarker.length)
    .trim()
    .split(/\s+/)
    .map(Number);
  const durationSeconds = durationUs / 1e6;
  return {
    tool: 'wrk',
    requests,
    durationSeconds,
    requestsPerSecond: durationSeconds > 0 ? requests / durationSeconds : 0,
    latencyP50Ms: p50Us / 1000,
    latencyP99Ms: p99Us / 1000,
    errors: { socket: socketErrors, timeout: timeouts, status: badStatus },
    clientCpuSeconds: child.cpuSeconds,
    bytes,
  };
}

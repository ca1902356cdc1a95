/**
 * `pnpm bench auth`: what identity and access cost. Two Meridian gateways on this machine, each
 * on a database and data directory of its own: one with MERIDIAN_AUTH=off, one with it on. The
 * one with auth is driven twice, as clients drive it:
 *
 * - with a Bearer access token fetched once from its token endpoint (Basic credentials, the
 *   scopes the scenarios need) and sent with every request after, as docker, podman, skopeo
 *   and containerd do until it expires;
 * - with Basic credentials on every request, as a script with curl -u does.
 *
 * The scenarios are `pnpm bench`'s (manifest GET by tag with wrk, blob pulls with undici and
 * with wrk), rounds interleaved, the order turned every other round; the median of each figure
 * is compared with auth off's. The budget (issue "Identity and access"): manifest GET req/s at
 * least 0.9 of auth off's, blob pull MiB/s at least 0.95.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { readClockTicksPerSecond } from '../cpu.js';
import { writeBlobFiles } from '../fixtures.js';
import { sampleBackgroundLoad } from '../machine.js';
import { median, medianFigure } from '../report.js';
import { createScenarios, type ScenarioId } from '../scenarios.js';
import { parseSideBySideArgs, perServerCpuSecond, runBenchMain, runInterleaved } from '../side-by-side.js';
import { startMeridian, type RunningTarget } from '../targets.js';

const usage = `Usage: pnpm bench auth [--quick] [--rounds N] [--scenarios LIST]

  --quick       short smoke run (small counts, 1 round)
  --rounds N    rounds per scenario (default 3, quick 1); the median is reported
  --scenarios LIST  only these of manifest-get, pull-small, pull-large, pull-small-wrk, pull-large-wrk
  env BENCH_DATABASE_URL  the databases' base (default postgres://postgres@127.0.0.1:5432/meridian_bench;
                          the runs use <name>_auth_off and <name>_auth_on, dropped and recreated)`;

/** Scenario, figure, and the least share of auth off's figure each way of signing in must reach. */
const BUDGET: ReadonlyArray<{ scenario: ScenarioId; figure: string; atLeast: number }> = [
  { scenario: 'manifest-get', figure: 'rps', atLeast: 0.9 },
  { scenario: 'pull-small', figure: 'mibps', atLeast: 0.95 },
  { scenario: 'pull-large', figure: 'mibps', atLeast: 0.95 },
  { scenario: 'pull-small-wrk', figure: 'mibps', atLeast: 0.95 },
  { scenario: 'pull-large-wrk', figure: 'mibps', atLeast: 0.95 },
];

/** The repositories the scenarios push to and pull from (scenarios.ts). */
const BENCH_SCOPES = ['repository:bench/manifest:pull,push', 'repository:bench/blobs:pull,push'];

const tools = { wrk: '/usr/bin/wrk', ab: '/usr/bin/ab' };
const log = (message: string) => console.error(`bench auth: ${message}`);

async function main(): Promise<number> {
  const options = parseSideBySideArgs('auth', usage);
  if (!options) return 0;
  const { plan } = options;
  const base = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/meridian_bench';
  // Made for this run only, and never printed.
  const adminPassword = randomBytes(24).toString('base64url');

  const ticksPerSecond = readClockTicksPerSecond();
  log(`background load: ${await sampleBackgroundLoad(ticksPerSecond)}% of one core busy before starting anything`);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-bench-auth-'));
  const started: RunningTarget[] = [];
  try {
    const fixtureDir = path.join(workDir, 'fixtures');
    const smallBlobs = await writeBlobFiles(fixtureDir, 'small', plan.smallBlobs.count, plan.smallBlobs.sizeBytes, { keepInMemory: true });
    const largeBlobs = await writeBlobFiles(fixtureDir, 'large', plan.largeBlobs.count, plan.largeBlobs.sizeBytes, { keepInMemory: false });
    const start = async (suffix: string, label: string, env: Record<string, string>) => {
      const dir = path.join(workDir, suffix);
      await mkdir(dir, { recursive: true });
      const target = await startMeridian({ databaseUrl: `${base}_${suffix}`, dataDir: path.join(dir, 'data'), label, env });
      started.push(target);
      log(`${label} at ${target.url}`);
      return target;
    };
    const off = await start('auth_off', 'Meridian, auth off', { MERIDIAN_AUTH: 'off' });
    // The longest token lifetime there is, so one token lasts the whole run, as it lasts a client's pull.
    const on = await start('auth_on', 'Meridian, auth on', { MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: adminPassword, MERIDIAN_AUTH_TOKEN_SECONDS: '3600' });
    const basic = `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}`;
    const bearer = { ...on, label: 'Meridian, auth on (Bearer)', requestHeaders: { authorization: `Bearer ${await fetchToken(on.url, basic)}` } };
    const basicEveryRequest = { ...on, label: 'Meridian, auth on (Basic)', requestHeaders: { authorization: basic } };
    const targets = [off, bearer, basicEveryRequest];

    const scenarioDir = path.join(workDir, 'scenarios');
    await mkdir(scenarioDir, { recursive: true });
    const wanted = new Set<string>(options.scenarios ?? BUDGET.map((b) => b.scenario));
    const scenarios = createScenarios({ plan, smallBlobs, largeBlobs, tools, workDir: scenarioDir, ticksPerSecond }).filter((s) => wanted.has(s.id));

    const runs = await runInterleaved(scenarios, targets, plan.rounds, log);

    let withinBudget = true;
    console.log('| scenario | figure | auth off | Bearer | Bearer / off | Basic | Basic / off | budget | per server CPU-second, Bearer / off, Basic / off |');
    console.log('|---|---|---:|---:|---:|---:|---:|---|---:|');
    for (const { scenario, figure, atLeast } of BUDGET.filter((b) => wanted.has(b.scenario))) {
      const without = medianFigure(runs.get(`${scenario} ${off.label}`), figure);
      const cells: string[] = [];
      const cpuRatios: string[] = [];
      let met = true;
      for (const signedIn of [bearer, basicEveryRequest]) {
        const figureOn = medianFigure(runs.get(`${scenario} ${signedIn.label}`), figure);
        const ratio = without && figureOn !== undefined ? figureOn / without : undefined;
        met &&= ratio !== undefined && ratio >= atLeast;
        cells.push(figureOn?.toFixed(1) ?? '—', ratio?.toFixed(3) ?? '—');
        const cpuOn = median((runs.get(`${scenario} ${signedIn.label}`) ?? []).map(perServerCpuSecond));
        const cpuOff = median((runs.get(`${scenario} ${off.label}`) ?? []).map(perServerCpuSecond));
        cpuRatios.push(cpuOn !== undefined && cpuOff ? (cpuOn / cpuOff).toFixed(3) : '—');
      }
      withinBudget &&= met;
      console.log(`| ${scenario} | ${figure} | ${without?.toFixed(1) ?? '—'} | ${cells.join(' | ')} | ≥ ${atLeast} ${met ? 'met' : 'NOT met'} | ${cpuRatios.join(', ')} |`);
    }
    return withinBudget ? 0 : 1;
  } finally {
    for (const target of started) await target.stop().catch((err: Error) => log(`could not stop ${target.label}: ${err.message}`));
    await rm(workDir, { recursive: true, force: true });
  }
}

/** One access token for the bench's repositories, from the gateway's token endpoint (Docker token spec). */
async function fetchToken(url: string, basic: string): Promise<string> {
  const query = new URLSearchParams([['service', 'meridian'], ...BENCH_SCOPES.map((scope) => ['scope', scope] as [string, string])]);
  const response = await request(`${url}/oauth2/token?${query}`, { headers: { authorization: basic } });
  const body = (await response.body.json()) as { token?: string };
  if (response.statusCode !== 200 || typeof body.token !== 'string') throw new Error(`the token endpoint answered ${response.statusCode}`);
  return body.token;
}

runBenchMain('bench auth', main);

/**
 * `pnpm cluster up` as a person runs it (README, "Try it on one machine"): a second cluster on
 * the same Postgres and Redis as another (another checkout, or the first one's tests) takes
 * databases and a queue prefix of its own with `--database-prefix` and `--queue-prefix`, and a
 * later `up` of the same cluster keeps them rather than starting parts on the default databases.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, type ClusterState } from '../deploy/cluster/cluster.js';
import { dropDatabases } from './support/cluster-run.js';

const POSTGRES = process.env.MERIDIAN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS = 'redis://127.0.0.1:6379';
const run = randomBytes(4).toString('hex');
const databasePrefix = `meridian_e2e_cli_${run}`;
const queuePrefix = `meridian-e2e-cli-${run}`;
let home: string;

/** `pnpm cluster --home HOME ...args`, as the package script runs it. */
async function cluster(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'deploy/cluster/main.ts', '--home', home, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, MERIDIAN_AUTH: 'off' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

async function databasesLike(pattern: string): Promise<string[]> {
  const admin = new pg.Client({ connectionString: POSTGRES });
  await admin.connect();
  try {
    return (await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname', [pattern])).rows.map((row) => row.datname);
  } finally {
    await admin.end();
  }
}

/** The Redis keys under the cluster's queue prefix (redis-cli, which the bootstrap installs with Redis). */
async function queueKeys(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-u', REDIS, '--scan', '--pattern', `${queuePrefix}:*`]);
  return stdout.split('\n').filter((key) => key !== '');
}

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-cluster-cli-'));
});

afterAll(async () => {
  if (home) {
    await cluster('down');
    await rm(home, { recursive: true, force: true });
  }
  await dropDatabases(POSTGRES, databasePrefix);
  const keys = await queueKeys();
  if (keys.length > 0) await promisify(execFile)('redis-cli', ['-u', REDIS, 'del', ...keys]);
}, 120_000);

describe('pnpm cluster down', () => {
  // A mistyped --home must not read as a cluster stopped while the real one runs on.
  it('says there is no cluster to stop under a home that holds none', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'meridian-e2e-cluster-none-'));
    try {
      const stopped = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'deploy/cluster/main.ts', '--home', empty, 'down'], { cwd: REPO_ROOT });
      expect(stopped.stdout).toBe(`no cluster in ${empty}: nothing to stop\n`);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('pnpm cluster up --database-prefix --queue-prefix', () => {
  it('puts every database and the queue under the prefixes given, and keeps them on a later up', async () => {
    const started = await cluster('up', '--regions', '1', '--database-prefix', databasePrefix, '--queue-prefix', queuePrefix);
    expect(started.stderr).not.toMatch(/unknown option/);
    expect(started.code).toBe(0);
    expect(await databasesLike(`${databasePrefix}%`)).toEqual([`${databasePrefix}_control`, `${databasePrefix}_eu_west`]);
    const state = JSON.parse(await readFile(path.join(home, 'cluster.json'), 'utf8')) as ClusterState;
    expect(state).toMatchObject({ databasePrefix, queuePrefix });
    expect(await queueKeys()).not.toEqual([]);

    // A later up without the flags adds a region on the same prefix, not on meridian_us_east.
    const grown = await cluster('up', '--regions', '2');
    expect(grown.code).toBe(0);
    expect(await databasesLike(`${databasePrefix}%`)).toEqual([`${databasePrefix}_control`, `${databasePrefix}_eu_west`, `${databasePrefix}_us_east`]);

    // Other prefixes for the same cluster would split it across two sets of databases: refused.
    const moved = await cluster('up', '--regions', '2', '--database-prefix', `${databasePrefix}_other`);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toContain(`cluster: the cluster in ${home} uses the database prefix ${databasePrefix}`);
  }, 600_000);
});

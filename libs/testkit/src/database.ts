import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '@meridian/metadata';

/** The server tests run against; CI and the machine's brief both use this one. */
export const TEST_POSTGRES_URL = process.env.MERIDIAN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
// Each `pnpm test` run owns its databases, named after the runner's pid, so two runs on one
// machine (a developer's and CI's) never drop each other's.
const RUN_PREFIX = 'meridian_test_';
const runId = () => process.env.MERIDIAN_TEST_RUN ?? String(process.pid);
const templateName = () => `${RUN_PREFIX}${runId()}_template`;

export function databaseUrl(name: string): string {
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs `work` on a connection to the test server's `postgres` database. */
export async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  try {
    await client.connect();
  } catch (err) {
    // Loud, never a skip: the suite needs a real Postgres (README "Tests").
    throw new Error(`Postgres is not reachable at ${TEST_POSTGRES_URL}: ${(err as Error).message}. Start it (see README) and run again.`);
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Builds the migrated template every test database is cloned from (Unleash's database-init). */
export async function createTemplateDatabase(): Promise<void> {
  process.env.MERIDIAN_TEST_RUN = runId(); // inherited by the test workers vitest forks next
  await withAdmin(async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${templateName()} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${templateName()}`);
  });
  await migrate(databaseUrl(templateName()));
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new database name owned by this run (dropped with the run's other databases). */
export function testDatabaseName(): string {
  return `${RUN_PREFIX}${runId()}_${randomBytes(4).toString('hex')}`;
}

/** A fresh database of its own for one test file, cloned from the migrated template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = testDatabaseName();
  await withAdmin(async (admin) => {
    // Cloning fails while anything is connected to the template; a concurrent clone counts.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${templateName()}`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '55006' || attempt > 50) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
      }
    }
  });
  return {
    name,
    url: databaseUrl(name),
    drop: () => dropTestDatabase(name),
  };
}

/** Drops one test database, once the sessions of pools that were just ended are gone. */
export async function dropTestDatabase(name: string): Promise<void> {
  await withAdmin(async (admin) => {
    // A pool's end() resolves once its clients are told to close, a moment before their
    // sessions are gone. FORCE then kills those sessions, and the dying client reports
    // 57P01 to no one listening: an uncaught error in the test. Give them that moment first.
    for (let attempt = 0; attempt < 50; attempt++) {
      const open = await admin.query('SELECT 1 FROM pg_stat_activity WHERE datname = $1 LIMIT 1', [name]);
      if (open.rowCount === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
}

/**
 * Drops this run's databases, and those of runs whose process is gone (an interrupted run),
 * never those of another run still going.
 */
export async function dropTestDatabases(): Promise<void> {
  await withAdmin(async (admin) => {
    const all = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${RUN_PREFIX}%`]);
    for (const { datname } of all.rows) {
      const owner = Number(/^meridian_test_(\d+)_/.exec(datname)?.[1]);
      if (String(owner) === runId() || !isAlive(owner)) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
    }
  });
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

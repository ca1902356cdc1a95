import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ensureDatabase, migrate, withTransaction, type Queryable } from '@meridian/metadata';
import { StartupError } from '../config.js';

export type { Queryable };

/** The control plane's SQL migrations (node-pg-migrate, as a region's are). */
export const CONTROL_PLANE_MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '../migrations');

/**
 * Creates the global database if absent and brings its schema up to date. Failing to reach or
 * log in to Postgres is a StartupError naming CONTROL_PLANE_DATABASE_URL (never its password).
 */
export async function prepareDatabase(databaseUrl: string, log: (message: string) => void): Promise<void> {
  try {
    await ensureDatabase(databaseUrl);
    await migrate(databaseUrl, log, CONTROL_PLANE_MIGRATIONS_DIR);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    // Network errors (ECONNREFUSED, ENOTFOUND, ...), logins refused (28xxx), a database that
    // cannot be opened or created, a server full or starting: the setting or the server is at
    // fault. Anything else (a failing migration) is a bug and keeps its stack.
    if (typeof code !== 'string' || !/^(E[A-Z]+|28...|3D000|42501|53300|57P03)$/.test(code)) throw err;
    const url = new URL(databaseUrl);
    const target = `PostgreSQL at ${url.hostname}:${url.port || '5432'}, database "${url.pathname.slice(1)}"`;
    throw new StartupError(`CONTROL_PLANE_DATABASE_URL: cannot prepare ${target} (${code}: ${(err as Error).message}); check the variable and the server it names`, {
      cause: err,
    });
  }
}

/**
 * A pool with pg's own type parsing: bigint columns come back as decimal strings. Unlike the
 * region's pool (libs/metadata), this one reads clocks, whose values exceed what a JS number holds
 * exactly; counts and byte sums are converted where they are read.
 */
export function createPool(databaseUrl: string, max = 10): pg.Pool {
  return new pg.Pool({ connectionString: databaseUrl, max });
}

/**
 * Runs `work` in a transaction, again (up to 5 times) when Postgres aborted it as a deadlock
 * victim: two batches from different regions may update the same catalog rows in another order.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTransaction(pool, work);
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      if ((code !== '40P01' && code !== '40001') || attempt >= 5) throw err;
    }
  }
}

/** Transaction-scoped advisory lock between the work that reads the region list and the catalog. */
const CATALOG_LOCK = 7_305_001;

/**
 * Ingesting changes takes this lock shared; adding or removing a region takes it exclusive. So a
 * region being added sees every change committed before it (its backfill), and every change
 * committed after it sees the region (a row of its own): none falls between the two.
 */
export async function lockCatalog(db: Queryable, mode: 'shared' | 'exclusive'): Promise<void> {
  await db.query(mode === 'shared' ? 'SELECT pg_advisory_xact_lock_shared($1)' : 'SELECT pg_advisory_xact_lock($1)', [CATALOG_LOCK]);
}

import pg from 'pg';

/** Anything that runs a query: the pool, or one client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

export interface PoolOptions {
  databaseUrl: string;
  max?: number;
}

/**
 * How long the pool keeps a connection nobody uses: ten minutes, where pg's default is ten
 * seconds. A new connection is a new Postgres backend, which plans every statement afresh: the
 * manifest push's statement is planned six times on each connection (five custom plans before the
 * cached generic one), several milliseconds of Postgres CPU each. A pool that closed its
 * connections after ten idle seconds paid that again after every pause in the pushes, and in the
 * small-image bench the planning was a third of the push statement's Postgres time.
 */
export const POOL_IDLE_TIMEOUT_MS = 10 * 60_000;

/**
 * bigint columns (ids, sizes) come back as strings by default; every value we store fits a JS
 * number. Given per pool, not set on pg's global table, so no other pg user is affected.
 */
export const METADATA_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

export function createPool(options: PoolOptions): pg.Pool {
  return new pg.Pool({ connectionString: options.databaseUrl, max: options.max ?? 10, idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS, types: METADATA_TYPES });
}

const ENSURE_DATABASE_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Creates the database named in `databaseUrl` when it does not exist yet, connecting to the
 * server's `postgres` database to do so. `pnpm start` relies on this to need no set-up.
 */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`database name must be [A-Za-z0-9_]+, got ${JSON.stringify(name)}`);
  url.pathname = '/postgres';
  // The first connection of a start: without a bound, a URL naming a port where something
  // accepts connections but never speaks PostgreSQL would hang the start with no word.
  const admin = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: ENSURE_DATABASE_CONNECT_TIMEOUT_MS });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await admin.query(`CREATE DATABASE "${name}"`).catch((err: { code?: string }) => {
        // Another gateway starting at the same moment won the race: fine.
        if (err.code !== '42P04' && err.code !== '23505') throw err;
      });
    }
  } finally {
    await admin.end();
  }
}

export async function withTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // The pool stops listening to a client's errors while it is checked out: a connection lost
  // between two statements (a server restart) would be an uncaught 'error' event, ending the
  // process. Caught here, the next statement fails instead, and the client is discarded.
  let lost: Error | undefined;
  const onError = (err: Error) => (lost = err);
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.off('error', onError);
    client.release(lost);
  }
}

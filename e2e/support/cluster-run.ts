/**
 * What the e2e suites that start whole clusters (deploy/cluster's Cluster) share: bounded waits
 * for a state to arrive, and the removal of the databases a cluster made.
 */
import pg from 'pg';

/**
 * Polls `check` until it returns a value other than undefined (a throw counts as not yet); fails
 * naming `what` after `boundMs`. A liveness bound, far above what it takes, never a measure of speed.
 */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, boundMs = 90_000): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${boundMs / 1000} s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Drops every database whose name starts with `prefix` (a cluster's `databasePrefix`), ending their sessions. */
export async function dropDatabases(postgresUrl: string, prefix: string): Promise<void> {
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  try {
    const names = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${prefix}%`]);
    for (const { datname } of names.rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

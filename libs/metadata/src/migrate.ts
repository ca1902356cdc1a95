import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/**
 * Applies every pending migration (node-pg-migrate, SQL files in ./migrations). Runs at gateway
 * start; node-pg-migrate takes an advisory lock, so gateways starting together do not collide.
 */
export async function migrate(databaseUrl: string, log: (message: string) => void = () => undefined): Promise<void> {
  await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    count: Infinity,
    log,
    // Our files are plain SQL; TypeScript/JS migrations would need a loader.
    checkOrder: true,
    verbose: false,
  });
}

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/**
 * Applies every pending migration (node-pg-migrate, SQL files in `dir`: the region's ./migrations
 * by default; the control plane passes its own). Runs at start. node-pg-migrate takes an
 * advisory lock and fails at once when another process holds it; processes starting together (a
 * supervisor's workers, several hosts) wait and try again, by which time the winner has usually
 * applied everything and there is nothing left to do.
 */
export async function migrate(databaseUrl: string, log: (message: string) => void = () => undefined, dir: string = MIGRATIONS_DIR): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await runner({
        databaseUrl,
        dir,
        direction: 'up',
        migrationsTable: 'pgmigrations',
        count: Infinity,
        log,
        checkOrder: true,
        verbose: false,
      });
      return;
    } catch (err) {
      if (!/another migration is already running/i.test((err as Error).message) || attempt >= 100) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
}

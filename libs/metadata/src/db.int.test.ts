import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { POOL_IDLE_TIMEOUT_MS, createPool, withTransaction } from './db.js';

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ databaseUrl: database.url, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('withTransaction', () => {
  it('fails the transaction, and does not crash the process, when the connection is lost between two statements', async () => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const run = withTransaction(pool, async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        // The server ends the session while no statement runs: pg reports it as an 'error'
        // event on the client, which nothing else listens to while the client is checked out.
        const ended = new Promise((resolve) => client.once('end', resolve));
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await ended;
        await client.query('SELECT 1');
      });
      await expect(run).rejects.toThrow();
      // The lost client was discarded: the pool still answers.
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await admin.end();
    }
  });
});

describe('createPool', () => {
  // A connection's backend has planned the statements it ran; one the pool closes after a short
  // pause takes its plans with it, and its replacement plans them again (POOL_IDLE_TIMEOUT_MS).
  it('keeps an idle connection, and so its backend and its plans, through a pause of minutes', async () => {
    const idle = createPool({ databaseUrl: database.url, max: 1 });
    // Installed before the connection is released, so the pool's idle timer runs on the fake clock.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const before = (await idle.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      vi.advanceTimersByTime(POOL_IDLE_TIMEOUT_MS - 1000);
      expect(idle.totalCount).toBe(1);
      const after = (await idle.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      expect(after).toBe(before);
      // Past the bound the connection goes: a pool does not hold a quiet region's backends forever.
      vi.advanceTimersByTime(POOL_IDLE_TIMEOUT_MS + 1000);
      expect(idle.totalCount).toBe(0);
    } finally {
      vi.useRealTimers();
      await idle.end();
    }
  });
});

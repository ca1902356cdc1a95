import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, until, type TestDatabase } from '@meridian/testkit';
import { createPool } from './db.js';
import { Metadata, MetadataTransaction } from './metadata.js';

/**
 * The fence a purge closes against replicated writes (ReplicationFenceStore), run as two open
 * transactions on two connections: whether one waits for the other is read from
 * pg_stat_activity, not from a timer.
 */

let database: TestDatabase;
let pool: ReturnType<typeof createPool>;
let metadata: Metadata;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ databaseUrl: database.url, max: 4 });
  metadata = new Metadata(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

/** A transaction open on a connection of its own, for the caller to end. */
async function openTransaction(): Promise<{ client: pg.PoolClient; tx: MetadataTransaction; pid: number }> {
  const client = await pool.connect();
  await client.query('BEGIN');
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return { client, tx: new MetadataTransaction(client), pid };
}

async function waitingOnALock(pid: number): Promise<boolean> {
  const { rows } = await pool.query<{ wait_event_type: string | null }>('SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1', [pid]);
  return rows[0]?.wait_event_type === 'Lock';
}

describe('the replication fence', () => {
  // A write that found the fence open commits before the purge's first step looks, so the purge
  // deletes it with the rest.
  it('closing waits for a replicated write that found it open', async () => {
    const writer = await openTransaction();
    const closer = await openTransaction();
    try {
      expect(await writer.tx.fence.isClosed()).toBe(false);
      let closed = false;
      const closing = closer.tx.fence.close().then(() => (closed = true));
      await until(() => waitingOnALock(closer.pid), { what: 'the close waiting for the write' });
      expect(closed).toBe(false);
      await writer.client.query('COMMIT');
      await closing;
      await closer.client.query('COMMIT');
      expect(await metadata.transaction((tx) => tx.fence.isClosed())).toBe(true);
    } finally {
      writer.client.release();
      closer.client.release();
    }
    expect(await metadata.fence.open((await metadata.fence.closedSince())!)).toBe(true);
  });

  // The write's check reads after its wait: in the statement that waited, the snapshot would be
  // from before the close committed.
  it('a replicated write that waited for a close under way finds the fence closed', async () => {
    const closer = await openTransaction();
    const writer = await openTransaction();
    try {
      await closer.tx.fence.close();
      const checking = writer.tx.fence.isClosed();
      await until(() => waitingOnALock(writer.pid), { what: 'the write waiting for the close' });
      await closer.client.query('COMMIT');
      expect(await checking).toBe(true);
      await writer.client.query('ROLLBACK');
    } finally {
      writer.client.release();
      closer.client.release();
    }
  });

  it('opens only the fence it was told of: one closed again since stays closed', async () => {
    const since = (await metadata.fence.closedSince())!;
    expect(await metadata.fence.open(since)).toBe(true);
    expect(await metadata.fence.closedSince()).toBeUndefined();
    await metadata.transaction((tx) => tx.fence.close());
    expect(await metadata.fence.open(since)).toBe(false);
    expect(await metadata.fence.closedSince()).toBeDefined();
  });
});

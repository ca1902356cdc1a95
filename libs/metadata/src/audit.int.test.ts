/**
 * The audit log's store against Postgres: entries read back as appended, in pages that continue
 * exactly where the last one ended, rows that cannot be changed or removed, and (in a cluster) the
 * queue of rows the control plane does not hold yet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { createPool } from './db.js';
import { Metadata } from './metadata.js';
import { auditPage, decodeAuditCursor, type AuditEntry, type AuditEvent } from './audit.js';

let database: TestDatabase;
let pool: ReturnType<typeof createPool>;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ databaseUrl: database.url, max: 4 });
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

const event = (n: number): AuditEvent => ({
  region: 'eu-west',
  identity: n % 2 === 0 ? `user-${n}` : undefined,
  address: '192.0.2.7',
  action: 'push',
  target: `team/app:v${n}`,
  outcome: 'success',
  detail: { digest: `sha256:${String(n).padStart(64, '0')}` },
});

describe('AuditStore', () => {
  it('reads back what was appended, oldest first, and pages through it without loss or repeat', async () => {
    const metadata = new Metadata(pool);
    const before = new Date(Date.now() - 1000);
    await metadata.audit.append([event(1), event(2)]);
    await metadata.transaction((tx) => tx.audit.append([event(3)]));
    await metadata.audit.append([event(4), event(5)]);

    const all = await metadata.audit.list({ since: before, limit: 100 });
    expect(all.map((entry) => entry.target)).toEqual(['team/app:v1', 'team/app:v2', 'team/app:v3', 'team/app:v4', 'team/app:v5']);
    expect(all[0]).toMatchObject({ region: 'eu-west', identity: null, address: '192.0.2.7', forwardedFor: null, action: 'push', outcome: 'success' });
    expect(all[1]!.identity).toBe('user-2');
    expect(all[1]!.detail).toEqual({ digest: `sha256:${'2'.padStart(64, '0')}` });

    const seen: AuditEntry[] = [];
    let after: string | undefined;
    do {
      const cursor = after === undefined ? undefined : decodeAuditCursor(after);
      const page = auditPage(await metadata.audit.list({ since: before, ...(cursor ? { after: cursor } : {}), limit: 3 }), 2);
      seen.push(...page.entries);
      after = page.next;
    } while (after);
    expect(seen.map((entry) => entry.id)).toEqual(all.map((entry) => entry.id));

    expect(await metadata.audit.list({ since: new Date(Date.now() + 60_000), limit: 10 })).toEqual([]);
  });

  it('refuses to change or remove a row: the log is append-only', async () => {
    const metadata = new Metadata(pool);
    await metadata.audit.append([event(6)]);
    await expect(pool.query("UPDATE audit_log SET identity = 'someone-else'")).rejects.toThrow(/append-only/);
    await expect(pool.query('DELETE FROM audit_log')).rejects.toThrow(/append-only/);
    await expect(pool.query('TRUNCATE audit_log CASCADE')).rejects.toThrow(/append-only/);
    expect((await metadata.audit.list({ limit: 1000 })).some((entry) => entry.target === 'team/app:v6')).toBe(true);
  });

  it('queues rows for the control plane only in a cluster, and forgets them once shipped', async () => {
    const lone = new Metadata(pool);
    const inCluster = new Metadata(pool, { shipAudit: true });
    await lone.audit.append([event(7)]);
    expect(await inCluster.audit.unshipped(10)).toEqual([]);
    await inCluster.audit.append([event(8), event(9)]);
    const queued = await inCluster.audit.unshipped(10);
    expect(queued.map((entry) => entry.target)).toEqual(['team/app:v8', 'team/app:v9']);
    await inCluster.audit.markShipped([queued[0]!.id]);
    expect((await inCluster.audit.unshipped(10)).map((entry) => entry.target)).toEqual(['team/app:v9']);
    // The shipped row is still in the log.
    expect((await lone.audit.list({ limit: 1000 })).some((entry) => entry.id === queued[0]!.id)).toBe(true);
  });
});

/**
 * The audit log's store against Postgres: entries read back as appended, in pages that continue
 * exactly where the last one ended, rows that cannot be changed or removed but by the retention's
 * prune, and (in a cluster) the queue of rows the control plane does not hold yet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { createPool } from './db.js';
import { Metadata } from './metadata.js';
import { auditPage, decodeAuditCursor, type AuditEntry, type AuditEvent } from './audit.js';
import { AuditRetention } from './audit-retention.js';

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

const NOW = new Date('2026-12-01T12:00:00.000Z');
const daysBefore = (days: number) => new Date(NOW.getTime() - days * 86_400_000);

/** Appends an entry made `at`, as if it had been recorded then; answers its id. */
async function entry(target: string, at: Date): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO audit_log (at, region, identity, action, target, outcome) VALUES ($1, 'eu-west', 'admin', 'push', $2, 'success') RETURNING id::text`,
    [at, target],
  );
  return rows[0]!.id;
}

/** The targets of this describe's entries (the others' are `team/...`), oldest first. */
async function targets(): Promise<string[]> {
  const { rows } = await pool.query<{ target: string }>(`SELECT target FROM audit_log WHERE target NOT LIKE 'team/%' ORDER BY at, id`);
  return rows.map((row) => row.target);
}

// Audit retention (migration 1733700000000): entries older than the period go, a batch per
// transaction; recent ones, and old ones the control plane does not hold yet, stay; the log
// refuses every other change as before.
describe('AuditRetention', () => {
  it('deletes the entries older than the period, a batch at a time, and keeps the recent ones and those not shipped yet', async () => {
    for (let n = 1; n <= 5; n++) await entry(`old/app:v${n}`, daysBefore(400 + n));
    const unshipped = await entry('old/app:unshipped', daysBefore(500));
    await pool.query('INSERT INTO audit_unshipped (id) VALUES ($1)', [unshipped]);
    await entry('recent/app:v1', daysBefore(364));
    await entry('recent/app:v2', daysBefore(1));

    const logged: Array<[object, string]> = [];
    const log = { info: (fields: object, message: string) => logged.push([fields, message]), warn: (fields: object, message: string) => logged.push([fields, message]) };
    const retention = new AuditRetention({ pool, retentionDays: 365, keepUnshipped: true, batchSize: 2, log });
    expect(await retention.pruneOnce(NOW)).toBe(5);
    expect(await targets()).toEqual(['old/app:unshipped', 'recent/app:v1', 'recent/app:v2']);
    expect(logged).toEqual([[{ count: 5, before: daysBefore(365) }, 'audit log: entries older than MERIDIAN_AUDIT_RETENTION_DAYS deleted']]);

    // Nothing more to do; once shipped, the old entry goes at the next round.
    expect(await retention.pruneOnce(NOW)).toBe(0);
    await pool.query('DELETE FROM audit_unshipped WHERE id = $1', [unshipped]);
    expect(await retention.pruneOnce(NOW)).toBe(1);
    expect(await targets()).toEqual(['recent/app:v1', 'recent/app:v2']);
  });

  it('keeps everything with a period of 0 days', async () => {
    await entry('kept/app:v1', daysBefore(10_000));
    const retention = new AuditRetention({ pool, retentionDays: 0, keepUnshipped: true, log: { info: () => undefined, warn: () => undefined } });
    expect(await retention.pruneOnce(NOW)).toBe(0);
    expect(await targets()).toContain('kept/app:v1');
  });

  it('leaves the log append-only for everything but the prune: other deletes, a delete of a row newer than the cutoff, updates and truncation are refused', async () => {
    const old = await entry('guarded/app:old', daysBefore(1000));
    const recent = await entry('guarded/app:recent', daysBefore(1));
    await expect(pool.query('DELETE FROM audit_log WHERE id = $1', [old])).rejects.toThrow('the audit log is append-only');
    await expect(pool.query('UPDATE audit_log SET target = $2 WHERE id = $1', [old, 'rewritten'])).rejects.toThrow('the audit log is append-only');
    await expect(pool.query('TRUNCATE audit_log CASCADE')).rejects.toThrow('the audit log is append-only');
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('meridian.audit_prune_before', $1, true)`, [daysBefore(365).toISOString()]);
      await expect(client.query('DELETE FROM audit_log WHERE id = $1', [recent])).rejects.toThrow('the audit log is append-only');
      await client.query('ROLLBACK');
      // The cutoff was the transaction's own: after it, the old row cannot be deleted either.
      await expect(client.query('DELETE FROM audit_log WHERE id = $1', [old])).rejects.toThrow('the audit log is append-only');
    } finally {
      client.release();
    }
    expect(await targets()).toEqual(expect.arrayContaining(['guarded/app:old', 'guarded/app:recent']));
  });
});

import type { IdentityAdminAudit } from '@meridian/auth/http';
import { AuditStore } from '@meridian/metadata';
import type { AuditRecord } from '@meridian/proto/audit';
import type { Queryable } from './db.js';

/** The `region` of the entries the control plane records itself (its identity admin API's). */
export const CONTROL_PLANE_AUDIT_REGION = 'control-plane';

/**
 * The cluster's audit log (migrations 1733350000000, 1733600000000): every region's entries, read
 * as a region reads its own (AuditStore.list), and stored from the regions' batches; and the
 * control plane's own, appended as a region appends (AuditStore.append).
 */
export class ClusterAuditStore extends AuditStore {
  constructor(private readonly pool: Queryable) {
    super(pool, false);
  }

  /** The identity admin API's hook (libs/auth): its changes and refused credentials, as the control plane's entries. */
  readonly identityAdmin: IdentityAdminAudit = (event) => this.append([{ ...event, region: CONTROL_PLANE_AUDIT_REGION }]);

  /** Stores a region's entries; one already held (the same region and id, shipped again) is skipped. Answers how many were new. */
  async store(region: string, entries: readonly AuditRecord[]): Promise<number> {
    if (entries.length === 0) return 0;
    const result = await this.pool.query({
      name: 'cluster-audit-store',
      text: `INSERT INTO audit_log (at, region, region_id, identity, address, forwarded_for, action, target, outcome, detail)
             SELECT at, $1, region_id, identity, address, forwarded_for, action, target, outcome, detail
               FROM unnest($2::timestamptz[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[])
                    AS e(at, region_id, identity, address, forwarded_for, action, target, outcome, detail)
             ON CONFLICT (region, region_id) DO NOTHING`,
      values: [
        region,
        entries.map((entry) => entry.at),
        entries.map((entry) => entry.id),
        entries.map((entry) => entry.identity),
        entries.map((entry) => entry.address),
        entries.map((entry) => entry.forwardedFor),
        entries.map((entry) => entry.action),
        entries.map((entry) => entry.target),
        entries.map((entry) => entry.outcome),
        entries.map((entry) => (entry.detail ? JSON.stringify(entry.detail) : null)),
      ],
    });
    return result.rowCount ?? 0;
  }
}

import type { Queryable } from './db.js';

export interface ClusterKey {
  kid: string;
  region: string;
  publicJwk: Record<string, unknown>;
}

/** The cluster's key set (cluster_signing_keys): every region's public signing keys. */
export class ClusterKeyStore {
  constructor(private readonly db: Queryable) {}

  /** Records that `region` signs with this key now. A kid is bound to the region that first published it. */
  async publish(key: ClusterKey): Promise<'published' | 'other-region'> {
    const result = await this.db.query<{ region: string }>(
      `INSERT INTO cluster_signing_keys (kid, region, public_jwk) VALUES ($1, $2, $3)
       ON CONFLICT (kid) DO UPDATE SET last_published_at = now() WHERE cluster_signing_keys.region = EXCLUDED.region
       RETURNING region`,
      [key.kid, key.region, key.publicJwk],
    );
    return result.rowCount === 1 ? 'published' : 'other-region';
  }

  /** The keys published within the last `retentionSeconds`: those tokens may still be signed with. */
  async current(retentionSeconds: number): Promise<ClusterKey[]> {
    const result = await this.db.query<ClusterKey>(
      `SELECT kid, region, public_jwk AS "publicJwk" FROM cluster_signing_keys
        WHERE last_published_at > now() - make_interval(secs => $1) ORDER BY first_published_at, kid`,
      [retentionSeconds],
    );
    return result.rows;
  }
}

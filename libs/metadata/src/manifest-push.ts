import type { ChangeBody } from '@meridian/proto/changes';
import type { Queryable } from './db.js';
import type { LocalClock } from './clock.js';
import { AUDIT_COLUMNS, type AuditEvent } from './audit.js';
import { CHANGE_CHANNEL, type MetadataChange } from './changes.js';
import { OUTBOX_CHANNEL, traceJson } from './outbox.js';
import type { TraceContextSource } from './metadata.js';
import type { ManifestContent } from './manifests.js';

/** A descriptor as a manifest states it: the digest it names and the size it claims. */
export interface ClaimedContent {
  digest: string;
  size: number;
}

/** A manifest pushed to this region, with everything its write records beside it. */
export interface ManifestPush extends ManifestContent {
  repository: string;
  /** Every blob descriptor, in the manifest's order (a digest may appear more than once). */
  blobs: readonly ClaimedContent[];
  /** Every manifest descriptor (an index's children). */
  children: readonly ClaimedContent[];
  /**
   * Blobs a peer region holds for the repository (digest → size): counted as held, and linked
   * pending with the manifest when the repository does not link them yet.
   */
  heldElsewhere: ReadonlyMap<string, number>;
  /** Set when pushed by tag: the tag is pointed at the manifest. */
  tag?: string;
  clock: LocalClock;
  /** The change appended to the outbox; its clock is the tag's write, or the manifest's. */
  change: ChangeBody;
  audit: AuditEvent;
  /** What every gateway of the region must drop from its caches once the push commits. */
  announce: readonly MetadataChange[];
}

/**
 * What a push found. `stored`: the manifest and all beside it committed, with the change's clock.
 * Otherwise nothing was written, and the facts say why: the sizes of the referenced blobs the
 * repository may serve (held elsewhere included) and of the referenced manifests it holds, and
 * the media type the digest is already stored as.
 */
export type ManifestPushResult =
  | { stored: true; hlc: bigint }
  | { stored: false; blobSizes: Map<string, number>; manifestSizes: Map<string, number>; storedMediaType?: string };

interface PushRow {
  ok: boolean;
  hlc: string | null;
  blob_sizes: Record<string, number> | null;
  manifest_sizes: Record<string, number> | null;
  stored_media_type: string | null;
}

/**
 * A local manifest push as one statement, so one round trip and one transaction: the checks that
 * every referenced blob and child manifest is in the repository with the size its descriptor
 * states and that the digest is not stored under another media type; then, only if they pass, the
 * repository (on a first push), the manifest row and its references (or the row already stored),
 * the pending links of blobs held elsewhere, the tag, the outbox record, the audit entry and the
 * change notices. The rows the checks find stay locked against deletion (FOR KEY SHARE) until the
 * statement commits, as ManifestStore.sizesInRepository locks them for a replicated write: a
 * DELETE of a child or of the manifest that comes after the push waits, then finds the index or
 * the new tag.
 *
 * A local write supersedes what the region holds: it is stamped past the tombstone of its digest,
 * the tag's tombstone and the write of the tag it moves (clearing the tag's tombstone; the
 * digest's stays, see ManifestStore.putTombstone), and a new manifest row, the tag and the outbox
 * record all take that one clock (`write_clock`, which reads those rows again locked, so it sees
 * their last committed clocks). A manifest already stored that
 * the push tags has its row's clock moved up to it: other regions store the manifest with the
 * change's clock, and a DELETE older than the push must leave the manifest in every region
 * (ManifestStore.delete compares a replicated delete with the row's clock). Under READ COMMITTED
 * every part of the statement reads the one snapshot taken as it began, and only its locks see
 * what committed later: a DELETE that committed while the statement waited for a lock left a
 * tombstone that snapshot does not hold, and writing as if it were not there would leave it in
 * place, clocked after the write it should precede (regions applying both in clock order would
 * then lose the manifest or tag this one holds). So the statement locks the rows it writes past
 * (the manifest, its tombstone, the tag, the tag's tombstone: in that order and after the
 * children, as ManifestStore.delete locks a manifest before removing its tags), and when one its
 * snapshot holds is gone once locked (`raced`: each read from the snapshot, then locked, which
 * reads its last committed version; the CASE's order is the lock order) it writes nothing, and
 * push() runs it again with a fresh snapshot. Not seen: a manifest or tag its snapshot holds
 * neither a row nor a tombstone of, created and deleted again by other transactions while it
 * waited; that delete's tombstone stays beside the write.
 */
const PUSH_STATEMENT = `
WITH repo_found AS (SELECT id FROM repositories WHERE name = $1::text),
blob_claims AS (SELECT * FROM unnest($11::text[], $12::bigint[]) AS c(digest, size)),
child_claims AS (SELECT * FROM unnest($13::text[], $14::bigint[]) AS c(digest, size)),
elsewhere AS (SELECT * FROM unnest($15::text[], $16::bigint[]) AS e(digest, size)),
present AS (
  SELECT rb.digest, rb.size FROM repository_blobs rb
  JOIN blobs b ON b.digest = rb.digest AND b.state = 'present'
  WHERE rb.repository_id = (SELECT id FROM repo_found) AND rb.digest = ANY($11::text[])
),
available AS (
  SELECT digest, size FROM present
  UNION ALL SELECT digest, size FROM elsewhere WHERE digest NOT IN (SELECT digest FROM present)
),
children AS (
  SELECT digest, size FROM manifests
  WHERE repository_id = (SELECT id FROM repo_found) AND digest = ANY($13::text[])
  FOR KEY SHARE
),
existing AS (
  SELECT id, media_type, hlc FROM manifests WHERE repository_id = (SELECT id FROM repo_found) AND digest = $2
  FOR KEY SHARE
),
checks AS (
  SELECT NOT EXISTS (SELECT 1 FROM blob_claims c LEFT JOIN available a ON a.digest = c.digest WHERE a.size IS DISTINCT FROM c.size)
     AND NOT EXISTS (SELECT 1 FROM child_claims c LEFT JOIN children m ON m.digest = c.digest WHERE m.size IS DISTINCT FROM c.size)
     AND NOT EXISTS (SELECT 1 FROM existing WHERE media_type <> $3) AS ok
),
raced AS (
  SELECT CASE
    WHEN NOT checks.ok THEN false
    WHEN EXISTS (SELECT 1 FROM manifests WHERE repository_id = (SELECT id FROM repo_found) AND digest = $2)
     AND NOT EXISTS (SELECT 1 FROM existing) THEN true
    WHEN EXISTS (SELECT 1 FROM manifest_tombstones WHERE repository_id = (SELECT id FROM repo_found) AND digest = $2)
     AND NOT EXISTS (SELECT 1 FROM manifest_tombstones WHERE repository_id = (SELECT id FROM repo_found) AND digest = $2 FOR UPDATE) THEN true
    WHEN EXISTS (SELECT 1 FROM tags WHERE repository_id = (SELECT id FROM repo_found) AND name = $17)
     AND NOT EXISTS (SELECT 1 FROM tags WHERE repository_id = (SELECT id FROM repo_found) AND name = $17 FOR NO KEY UPDATE) THEN true
    ELSE EXISTS (SELECT 1 FROM tag_tombstones WHERE repository_id = (SELECT id FROM repo_found) AND name = $17)
     AND NOT EXISTS (SELECT 1 FROM tag_tombstones WHERE repository_id = (SELECT id FROM repo_found) AND name = $17 FOR UPDATE)
  END AS vanished
  FROM checks
),
repo_made AS (
  INSERT INTO repositories (name) SELECT $1 FROM checks, raced WHERE checks.ok AND NOT raced.vanished AND NOT EXISTS (SELECT 1 FROM repo_found)
  ON CONFLICT (name) DO NOTHING
  RETURNING id
),
ready AS (
  SELECT id AS repository_id FROM (SELECT id FROM repo_found UNION ALL SELECT id FROM repo_made) AS repo, checks, raced
  WHERE checks.ok AND NOT raced.vanished
),
write_clock AS (
  SELECT GREATEST($9::bigint,
    COALESCE((SELECT hlc + 1 FROM manifest_tombstones WHERE repository_id = (SELECT repository_id FROM ready) AND digest = $2 FOR UPDATE), 0),
    COALESCE((SELECT hlc + 1 FROM tag_tombstones WHERE repository_id = (SELECT repository_id FROM ready) AND name = $17 FOR UPDATE), 0),
    COALESCE((SELECT hlc + 1 FROM tags WHERE repository_id = (SELECT repository_id FROM ready) AND name = $17 FOR NO KEY UPDATE), 0)) AS hlc
),
inserted AS (
  INSERT INTO manifests (repository_id, digest, media_type, size, payload, subject_digest, artifact_type, annotations, hlc, origin)
  SELECT repository_id, $2::text, $3::text, $5::bigint, $4::bytea, $6::text, $7::text, $8::jsonb, (SELECT hlc FROM write_clock), $10::text
  FROM ready WHERE NOT EXISTS (SELECT 1 FROM existing)
  ON CONFLICT (repository_id, digest) DO NOTHING
  RETURNING id, hlc
),
stored AS (
  SELECT id, hlc FROM inserted
  UNION ALL SELECT id, hlc FROM existing WHERE EXISTS (SELECT 1 FROM ready)
),
raised AS (
  UPDATE manifests SET hlc = (SELECT hlc FROM write_clock), origin = $10
  WHERE id = (SELECT id FROM existing) AND EXISTS (SELECT 1 FROM ready) AND $17::text IS NOT NULL
    AND (hlc, origin) < ((SELECT hlc FROM write_clock), $10::text COLLATE "C")
),
blob_references AS (
  INSERT INTO manifest_blobs (manifest_id, digest)
  SELECT DISTINCT inserted.id, digest FROM inserted, unnest($11::text[]) AS digest
  ON CONFLICT DO NOTHING
),
child_references AS (
  INSERT INTO manifest_references (manifest_id, child_digest)
  SELECT DISTINCT inserted.id, digest FROM inserted, unnest($13::text[]) AS digest
  ON CONFLICT DO NOTHING
),
pending_blobs AS (
  INSERT INTO blobs (digest, size, state)
  SELECT digest, size, 'pending' FROM elsewhere WHERE EXISTS (SELECT 1 FROM stored) AND digest NOT IN (SELECT digest FROM present)
  ON CONFLICT (digest) DO NOTHING
),
pending_links AS (
  INSERT INTO repository_blobs (repository_id, digest, size)
  SELECT ready.repository_id, e.digest, e.size FROM ready, elsewhere e
  WHERE EXISTS (SELECT 1 FROM stored) AND e.digest NOT IN (SELECT digest FROM present)
  ON CONFLICT (repository_id, digest) DO NOTHING
),
tag_tombstone AS (
  DELETE FROM tag_tombstones
  WHERE repository_id = (SELECT repository_id FROM ready) AND name = $17 AND EXISTS (SELECT 1 FROM stored)
  RETURNING hlc
),
tagged AS (
  INSERT INTO tags (repository_id, name, manifest_id, hlc, origin)
  SELECT ready.repository_id, $17::text, stored.id, (SELECT hlc FROM write_clock), $10
  FROM ready, stored WHERE $17::text IS NOT NULL
  ON CONFLICT (repository_id, name) DO UPDATE
    SET manifest_id = EXCLUDED.manifest_id, hlc = GREATEST(EXCLUDED.hlc, tags.hlc + 1), origin = EXCLUDED.origin, updated_at = now()
  RETURNING hlc
),
recorded AS (
  INSERT INTO outbox (hlc, body, trace)
  SELECT COALESCE((SELECT hlc FROM tagged), stored.hlc), $18::jsonb, $19::jsonb FROM stored
  RETURNING hlc
),
audited AS (
  INSERT INTO audit_log (${AUDIT_COLUMNS})
  SELECT $20::text, $21::text, $22::text, $23::text, $24::text, $25::text, $26::text, $27::jsonb FROM stored
  RETURNING id
),
audit_queued AS (
  INSERT INTO audit_unshipped (id) SELECT id FROM audited WHERE $28::boolean
),
-- A CTE that is not a write runs only as far as something reads it, and pg_notify returns nothing
-- worth reading: the notices are sent because the final SELECT counts this CTE's rows to the end
-- (MATERIALIZED: run as a whole, never folded into that count). Without them no other gateway of
-- the region drops what it cached, and the relay waits for its next poll. They stay in the push's
-- transaction although Postgres holds the lock a NOTIFY takes through this commit's WAL flush
-- (the reason a blob's close sends none, see LOCAL_LINK): a push is one commit per image, not
-- four, and sampled with small images pushed 8 at a time its backends waited on that lock in 3 %
-- of their busy samples (on the WAL flush itself in three quarters). Sent in a transaction of
-- their own after the commit, they cost a round trip more per push and saved no CPU per image.
announced AS MATERIALIZED (
  SELECT pg_notify('${CHANGE_CHANNEL}', change) FROM unnest($29::text[]) AS change WHERE EXISTS (SELECT 1 FROM recorded)
  UNION ALL SELECT pg_notify('${OUTBOX_CHANNEL}', '') WHERE EXISTS (SELECT 1 FROM recorded)
)
SELECT checks.ok,
       (SELECT hlc::text FROM recorded) AS hlc,
       (SELECT count(*) FROM announced) AS notices,
       CASE WHEN NOT checks.ok THEN (SELECT json_object_agg(digest, size) FROM available) END AS blob_sizes,
       CASE WHEN NOT checks.ok THEN (SELECT json_object_agg(digest, size) FROM children) END AS manifest_sizes,
       (SELECT media_type FROM existing) AS stored_media_type
FROM checks`;

/** How often a push whose statement raced a concurrent write of the same rows runs again. */
const RACE_ATTEMPTS = 3;

/** Local manifest pushes (see PUSH_STATEMENT). */
export class ManifestPushStore {
  constructor(
    private readonly db: Queryable,
    /** The trace context of the write under way, stored with its outbox record. */
    private readonly traceContext: TraceContextSource,
    /** In a cluster: the audit entry is also queued for the control plane. */
    private readonly shipAudit: boolean,
  ) {}

  /**
   * Checks and stores a pushed manifest, in one statement (its own transaction, or part of the
   * caller's). A statement that finds the checks passed but could not write (the repository or
   * the same manifest created by a concurrent push after it began, or a row it writes past deleted
   * while it waited for its lock) wrote nothing, and runs again: it then sees what the other
   * transaction committed.
   */
  async push(push: ManifestPush): Promise<ManifestPushResult> {
    const values = this.parameters(push);
    for (let attempt = 1; ; attempt++) {
      const result = await this.db.query<PushRow>({ name: 'manifest-push', text: PUSH_STATEMENT, values });
      const row = result.rows[0]!;
      if (row.hlc !== null) return { stored: true, hlc: BigInt(row.hlc) };
      if (!row.ok) {
        return {
          stored: false,
          blobSizes: sizeMap(row.blob_sizes),
          manifestSizes: sizeMap(row.manifest_sizes),
          ...(row.stored_media_type !== null ? { storedMediaType: row.stored_media_type } : {}),
        };
      }
      if (attempt >= RACE_ATTEMPTS) throw new Error(`manifest ${push.digest} of ${push.repository} could not be stored: concurrent writes kept changing its rows`);
    }
  }

  private parameters(push: ManifestPush): unknown[] {
    const { audit } = push;
    const elsewhere = [...push.heldElsewhere];
    return [
      push.repository,
      push.digest,
      push.mediaType,
      push.payload,
      push.payload.byteLength,
      push.subjectDigest ?? null,
      push.artifactType ?? null,
      push.annotations ? JSON.stringify(push.annotations) : null,
      push.clock.now.toString(),
      push.clock.origin,
      push.blobs.map((blob) => blob.digest),
      push.blobs.map((blob) => blob.size),
      push.children.map((child) => child.digest),
      push.children.map((child) => child.size),
      elsewhere.map(([digest]) => digest),
      elsewhere.map(([, size]) => size),
      push.tag ?? null,
      JSON.stringify(push.change),
      traceJson(this.traceContext()),
      audit.region,
      audit.identity ?? null,
      audit.address ?? null,
      audit.forwardedFor ?? null,
      audit.action,
      audit.target ?? null,
      audit.outcome,
      audit.detail ? JSON.stringify(audit.detail) : null,
      this.shipAudit,
      push.announce.map((change) => JSON.stringify(change)),
    ];
  }
}

function sizeMap(sizes: Record<string, number> | null): Map<string, number> {
  return new Map(Object.entries(sizes ?? {}).map(([digest, size]) => [digest, Number(size)]));
}

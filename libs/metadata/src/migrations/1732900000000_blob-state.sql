-- Up Migration

-- Whether the region's store holds a blob's bytes. 'present': it does (they were verified
-- before they were stored). 'pending': the region should hold the blob (repositories link it)
-- but does not now: its bytes were found missing or unreadable, or (geo-replication) they are
-- still being copied in. A pending blob is never served or counted as present, a manifest
-- naming it is refused, and it turns present again once its verified bytes are in the store
-- (a client's push, or a peer's copy). Links are kept, so no repository forgets what it had.
ALTER TABLE blobs ADD COLUMN state text NOT NULL DEFAULT 'present' CHECK (state IN ('present', 'pending'));
-- What a reconciliation walks: the few blobs the region lacks, without scanning the rest.
CREATE INDEX blobs_pending_idx ON blobs (digest) WHERE state = 'pending';

-- Down Migration
DROP INDEX blobs_pending_idx;
ALTER TABLE blobs DROP COLUMN state;

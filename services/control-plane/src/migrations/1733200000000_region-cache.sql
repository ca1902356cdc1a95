-- Up Migration

-- An edge region keeps blobs only as a cache of this many bytes: it receives manifests and tags
-- as every region does, blobs only when a client asks for them (read-through), and evicts the
-- least recently used ones. NULL for a full region, which holds every blob.
ALTER TABLE regions ADD COLUMN cache_bytes bigint CHECK (cache_bytes > 0);

-- Down Migration
ALTER TABLE regions DROP COLUMN cache_bytes;

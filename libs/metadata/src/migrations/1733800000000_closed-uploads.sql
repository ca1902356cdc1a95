-- Up Migration

-- An open upload session has no row: its signed `_state` is all there is of it until a first
-- chunk puts bytes in the blob store, so opening one costs the region no write. What the region
-- remembers instead is which sessions have ended (closed as a blob, cancelled, or ended by a
-- wrong digest), so that a request on one is BLOB_UPLOAD_UNKNOWN. A record is needed only while
-- a token of its session may still be accepted (MERIDIAN_UPLOAD_MAX_IDLE_HOURS), and is purged
-- after. Sessions open at this migration carry on without their rows.
--
-- `uploads` stays, unused by this release: a gateway of the release before, still serving while
-- the region's gateways are replaced, writes and reads it. A later migration drops it, once no
-- gateway of that release can be running. (A database that ran an unreleased version of this
-- migration, which dropped it, serves this release all the same.)
CREATE TABLE closed_uploads (
  id         uuid PRIMARY KEY,
  closed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX closed_uploads_closed_idx ON closed_uploads (closed_at);

-- Down Migration
DROP TABLE closed_uploads;
CREATE TABLE IF NOT EXISTS uploads (
  id             uuid PRIMARY KEY,
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  started_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS uploads_started_idx ON uploads (started_at);

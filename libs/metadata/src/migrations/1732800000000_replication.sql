-- Up Migration

-- Geo-replication, regional side.
--
-- The outbox: every local write appends the change it made here, in the same transaction, so a
-- change is relayed to the control plane if and only if it committed. The relay deletes rows once
-- the control plane has stored them. `hlc` is the write's hybrid logical clock (wall ms << 16 |
-- counter); `body` is the change record the control plane and the worker read (kind, repository,
-- digest or tag, ...).
CREATE TABLE outbox (
  seq         bigserial PRIMARY KEY,
  hlc         bigint NOT NULL,
  body        jsonb NOT NULL,
  trace       jsonb,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Which write a tag or manifest row holds: its clock and the region it was made in. A replicated
-- write is applied only if (hlc, origin) is newer, so regions converge on the last writer. The
-- "C" collation makes the tuple comparison order region names by bytes, as every region does.
ALTER TABLE tags ADD COLUMN hlc bigint NOT NULL DEFAULT 0, ADD COLUMN origin text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE manifests ADD COLUMN hlc bigint NOT NULL DEFAULT 0, ADD COLUMN origin text COLLATE "C" NOT NULL DEFAULT '';

-- Deletes leave tombstones with the delete's clock: a replicated write older than the delete
-- (a tag move still in flight from another region) must not bring the name back.
CREATE TABLE tag_tombstones (
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  name           text COLLATE "C" NOT NULL,
  hlc            bigint NOT NULL,
  origin         text COLLATE "C" NOT NULL,
  deleted_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, name)
);

CREATE TABLE manifest_tombstones (
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest         text NOT NULL,
  hlc            bigint NOT NULL,
  origin         text COLLATE "C" NOT NULL,
  deleted_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, digest)
);

-- Down Migration
DROP TABLE manifest_tombstones;
DROP TABLE tag_tombstones;
ALTER TABLE manifests DROP COLUMN hlc, DROP COLUMN origin;
ALTER TABLE tags DROP COLUMN hlc, DROP COLUMN origin;
DROP TABLE outbox;

-- Up Migration

-- The control plane's global database: the regions of the cluster, every change a region has
-- relayed, the catalog merged from those changes, and where each change stands in each region.
-- Region names use the "C" collation, so a (hlc, origin) tuple comparison orders names by bytes,
-- as compareClocks (libs/proto/src/clock.ts) and every region do: all agree on one winner.

CREATE TABLE regions (
  name          text COLLATE "C" PRIMARY KEY,
  http          text NOT NULL,
  grpc          text NOT NULL,
  lat           double precision NOT NULL,
  lon           double precision NOT NULL,
  -- adding: its backfill runs (new changes already target it); active: caught up;
  -- draining: removed, no work targets it any more.
  state         text NOT NULL CHECK (state IN ('adding', 'active', 'draining')),
  heartbeat_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Every change a region relayed, once: (origin, seq) is the origin's outbox sequence, so a batch
-- delivered again stores nothing new. `repository` and `digest` are copied out of `body` for the
-- status queries.
CREATE TABLE changes (
  id           bigserial PRIMARY KEY,
  origin       text COLLATE "C" NOT NULL,
  seq          bigint NOT NULL,
  hlc          bigint NOT NULL,
  at           timestamptz NOT NULL,
  kind         text NOT NULL,
  repository   text COLLATE "C" NOT NULL,
  digest       text,
  body         jsonb NOT NULL,
  trace        jsonb,
  received_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (origin, seq)
);
-- The puts and deletes of a manifest (replication status by digest).
CREATE INDEX changes_manifest_idx ON changes (repository, digest) WHERE kind IN ('manifest.put', 'manifest.delete');

-- The catalog merged from every region's changes. One row per name, holding the clock of the write
-- that won (last writer wins by (hlc, origin)) and the change that made it; deletes keep the row
-- as a tombstone (`deleted`), so an older write arriving late cannot bring the name back.
CREATE TABLE catalog_manifests (
  repository  text COLLATE "C" NOT NULL,
  digest      text NOT NULL,
  media_type  text,
  size        bigint,
  deleted     boolean NOT NULL,
  hlc         bigint NOT NULL,
  origin      text COLLATE "C" NOT NULL,
  change_id   bigint NOT NULL REFERENCES changes (id),
  PRIMARY KEY (repository, digest)
);

CREATE TABLE catalog_tags (
  repository  text COLLATE "C" NOT NULL,
  tag         text COLLATE "C" NOT NULL,
  -- The manifest the tag names (once deleted: the one it last named).
  digest      text NOT NULL,
  deleted     boolean NOT NULL,
  hlc         bigint NOT NULL,
  origin      text COLLATE "C" NOT NULL,
  change_id   bigint NOT NULL REFERENCES changes (id),
  PRIMARY KEY (repository, tag)
);
-- A manifest delete deletes the tags naming it.
CREATE INDEX catalog_tags_digest_idx ON catalog_tags (repository, digest) WHERE NOT deleted;

CREATE TABLE catalog_blobs (
  repository  text COLLATE "C" NOT NULL,
  digest      text NOT NULL,
  size        bigint,
  deleted     boolean NOT NULL,
  hlc         bigint NOT NULL,
  origin      text COLLATE "C" NOT NULL,
  change_id   bigint NOT NULL REFERENCES changes (id),
  PRIMARY KEY (repository, digest)
);

-- Where one change stands in one target region. Postgres is the truth: Redis holds a job for a
-- pending row, and after Redis loses its data the requeue adds every pending row again.
CREATE TABLE replications (
  change_id   bigint NOT NULL REFERENCES changes (id),
  region      text COLLATE "C" NOT NULL REFERENCES regions (name),
  state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed', 'superseded', 'dropped')),
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text,
  -- Made by the region's backfill (the catalog it lacked when added), not by a new change.
  backfill    boolean NOT NULL DEFAULT false,
  -- Blob bytes copied to the region for this change.
  bytes       bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  done_at     timestamptz,
  PRIMARY KEY (change_id, region)
);
-- The requeue pages through every pending row in change order.
CREATE INDEX replications_pending_idx ON replications (change_id, region) WHERE state = 'pending';
-- A region's pending rows (dropped when it drains).
CREATE INDEX replications_region_pending_idx ON replications (region, change_id) WHERE state = 'pending';
-- A region's backfill progress.
CREATE INDEX replications_backfill_idx ON replications (region, state) WHERE backfill;

-- Down Migration
DROP TABLE replications;
DROP TABLE catalog_blobs;
DROP TABLE catalog_tags;
DROP TABLE catalog_manifests;
DROP TABLE changes;
DROP TABLE regions;

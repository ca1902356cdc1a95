-- Up Migration

-- Regional metadata of one Meridian region. Text that clients page through (repository and tag
-- names) uses the "C" collation: ORDER BY and `>` then agree on byte order whatever the
-- database's locale, so `last` paging never skips or repeats. distribution-spec calls the order
-- "lexical"; byte order is what Distribution answers too, and what clients page by.

CREATE TABLE repositories (
  id          bigserial PRIMARY KEY,
  name        text COLLATE "C" NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every verified blob the region's store holds, whichever repositories link it.
CREATE TABLE blobs (
  digest      text PRIMARY KEY,
  size        bigint NOT NULL CHECK (size >= 0),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Which blobs a repository may serve: a blob pushed to A is readable through B only once it is
-- pushed or mounted there too (as Distribution links blobs per repository).
CREATE TABLE repository_blobs (
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest         text NOT NULL REFERENCES blobs (digest),
  size           bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_digest_idx ON repository_blobs (digest);

CREATE TABLE manifests (
  id              bigserial PRIMARY KEY,
  repository_id   bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest          text NOT NULL,
  media_type      text NOT NULL,
  size            integer NOT NULL,
  payload         bytea NOT NULL,
  subject_digest  text,
  artifact_type   text,
  annotations     jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (repository_id, digest)
);
-- The referrers API asks "which manifests of this repository name this subject".
CREATE INDEX manifests_subject_idx ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

-- Blobs an image manifest references (config and layers).
CREATE TABLE manifest_blobs (
  manifest_id  bigint NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
  digest       text NOT NULL,
  PRIMARY KEY (manifest_id, digest)
);
CREATE INDEX manifest_blobs_digest_idx ON manifest_blobs (digest);

-- Manifests an image index references.
CREATE TABLE manifest_references (
  manifest_id   bigint NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
  child_digest  text NOT NULL,
  PRIMARY KEY (manifest_id, child_digest)
);
CREATE INDEX manifest_references_child_idx ON manifest_references (child_digest);

CREATE TABLE tags (
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  name           text COLLATE "C" NOT NULL,
  manifest_id    bigint NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, name)
);
CREATE INDEX tags_manifest_idx ON tags (manifest_id);

-- Open upload sessions; their bytes live in the blob store under uploads/<id>.
CREATE TABLE uploads (
  id             uuid PRIMARY KEY,
  repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  started_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_started_idx ON uploads (started_at);

-- Down Migration
DROP TABLE uploads;
DROP TABLE tags;
DROP TABLE manifest_references;
DROP TABLE manifest_blobs;
DROP TABLE manifests;
DROP TABLE repository_blobs;
DROP TABLE blobs;
DROP TABLE repositories;

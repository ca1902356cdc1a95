-- Up Migration

-- Referrers are paged in digest order (Link: rel="next"); the index serves that order directly.
DROP INDEX manifests_subject_idx;
CREATE INDEX manifests_subject_digest_idx ON manifests (repository_id, subject_digest, digest) WHERE subject_digest IS NOT NULL;

-- Down Migration
DROP INDEX manifests_subject_digest_idx;
CREATE INDEX manifests_subject_idx ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

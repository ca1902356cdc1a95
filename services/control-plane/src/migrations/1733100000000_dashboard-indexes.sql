-- Up Migration

-- The dashboard's figures, read every few seconds: the replication lag of what was applied in the
-- last minutes (done rows by when they were done; backfill rows copy old changes, and their age is
-- no lag), and the failed replications of each region.
CREATE INDEX replications_done_idx ON replications (done_at) WHERE state = 'done' AND NOT backfill;
CREATE INDEX replications_failed_idx ON replications (region) WHERE state = 'failed';

-- Down Migration
DROP INDEX replications_failed_idx;
DROP INDEX replications_done_idx;

-- Up Migration

-- Set by the first step of a purge (the region is being removed from the cluster): from then on
-- the region refuses every replicated write, so a replication worker still applying a job to it
-- (one whose queue lock lapsed, which the control plane's purge no longer waits for) cannot put
-- content back after the purge has emptied it. At most one row. Lifted once the control plane
-- lists the region as taking replication again (it was registered anew), seen by a request made
-- after the fence was set (the outbox relay's heartbeat, see ReplicationFenceStore).
CREATE TABLE replication_fence (
  only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  since     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Down Migration
DROP TABLE replication_fence;

-- Up Migration

-- The operator's switch for nearest-region routing: off, the global router sends no client to the
-- region (for maintenance, or a region with a problem its health probe cannot see). It is apart
-- from `state`, which says what replication does with the region: a region can keep receiving
-- every change while no client is routed to it.
ALTER TABLE regions ADD COLUMN routing boolean NOT NULL DEFAULT true;

-- Down Migration
ALTER TABLE regions DROP COLUMN routing;

-- Up Migration

-- The control plane's own entries in the cluster's audit log: identity changes made through its
-- identity admin API, and credentials it refused. They are written here (region `control-plane`)
-- rather than shipped from a region, so they have no id in a region, and take their time from
-- the database, as a region's own entries do.
ALTER TABLE audit_log
  ALTER COLUMN region_id DROP NOT NULL,
  ALTER COLUMN at SET DEFAULT date_trunc('milliseconds', clock_timestamp());

-- Down Migration
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
DELETE FROM audit_log WHERE region_id IS NULL;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;
ALTER TABLE audit_log
  ALTER COLUMN at DROP DEFAULT,
  ALTER COLUMN region_id SET NOT NULL;

-- Up Migration

-- Every region's audit log, as each region's gateway ships it (services/gateway
-- replication/audit-shipper.ts): the same columns as a region's `audit_log` (libs/metadata), so
-- one store reads both, plus the entry's id in its region, by which an entry shipped twice is
-- stored once. Append-only, as in the regions.
CREATE TABLE audit_log (
  id             bigserial PRIMARY KEY,
  at             timestamptz NOT NULL,
  region         text NOT NULL,
  region_id      bigint NOT NULL,
  identity       text,
  address        text,
  forwarded_for  text,
  action         text NOT NULL,
  target         text,
  outcome        text NOT NULL,
  detail         jsonb,
  UNIQUE (region, region_id)
);
CREATE INDEX audit_log_at ON audit_log (at, id);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Down Migration
DROP TABLE audit_log;
DROP FUNCTION audit_log_refuse_change();

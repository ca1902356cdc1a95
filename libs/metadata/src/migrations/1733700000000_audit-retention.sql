-- Up Migration

-- Audit retention (MERIDIAN_AUDIT_RETENTION_DAYS): the log stays append-only, except that the
-- retention's prune (libs/metadata audit-retention.ts) may delete entries older than the cutoff
-- it sets for its own transaction (meridian.audit_prune_before). Any other DELETE, any UPDATE,
-- and TRUNCATE are refused as before.
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  prune_before text := current_setting('meridian.audit_prune_before', true);
BEGIN
  IF TG_OP = 'DELETE' AND prune_before <> '' AND OLD.at < prune_before::timestamptz THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'the audit log is append-only';
END
$$;

-- Down Migration
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END
$$;

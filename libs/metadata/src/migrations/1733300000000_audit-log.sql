-- Up Migration

-- The region's audit log: who signed in (or failed to), pushed, deleted, or changed an identity,
-- scope map or token; when, from which address, in which region. Rows are only ever added: the
-- triggers below refuse UPDATE and DELETE, so not even the gateway's own code can rewrite
-- history. A manifest push or delete writes its row in the transaction of the write itself, so a
-- write is audited if and only if it committed. Never holds a password or a token: `identity` is
-- a name, `detail` facts such as a digest.
CREATE TABLE audit_log (
  id             bigserial PRIMARY KEY,
  -- Milliseconds, as clients (JavaScript dates) carry time: a page of the log ends at an (at, id)
  -- that the next request gives back exactly.
  at             timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  region         text NOT NULL,
  -- NULL: anonymous (MERIDIAN_AUTH=off, or no credentials). For a failed sign-in, the name given.
  identity       text,
  -- The TCP peer; behind a proxy (the global router), the proxy. `forwarded_for` is the
  -- X-Forwarded-For the request carried, as claimed: nothing vouches for it.
  address        text,
  forwarded_for  text,
  action         text NOT NULL,
  target         text,
  outcome        text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
  detail         jsonb
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

-- In a cluster, the rows not yet stored by the control plane (which keeps every region's log).
-- A row is added here with its audit row and removed once the control plane has it, so a row
-- committed late (after a higher id was shipped) is still shipped.
CREATE TABLE audit_unshipped (
  id  bigint PRIMARY KEY REFERENCES audit_log (id)
);

-- Down Migration
DROP TABLE audit_unshipped;
DROP TABLE audit_log;
DROP FUNCTION audit_log_refuse_change();

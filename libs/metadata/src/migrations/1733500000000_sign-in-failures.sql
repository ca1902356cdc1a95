-- Up Migration

-- Failed sign-ins per identity name and per client address, counted by rate-limiter-flexible's
-- Postgres store (libs/metadata sign-in-failures.ts) for every gateway process of the region at
-- once. The columns are the ones that store reads and writes: `key` is "name:<name>" or
-- "address:<address>", `points` the failures (and attempts under way) in the window, `expire` its
-- end in ms since the epoch. UNLOGGED: counts lost in a crash of the database only give an
-- attacker one window back, and each sign-in attempt writes here.
CREATE UNLOGGED TABLE sign_in_failures (
  key varchar(255) PRIMARY KEY,
  points integer NOT NULL DEFAULT 0,
  expire bigint
);

-- Down Migration
DROP TABLE sign_in_failures;

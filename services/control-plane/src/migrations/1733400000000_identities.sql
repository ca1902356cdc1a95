-- Up Migration

-- The cluster's identities, when MERIDIAN_AUTH is on: the same tables, with the same meaning, as
-- a lone region keeps (libs/metadata, migration 1733100000000_identities), so one store serves
-- both. Every region copies them into its own database (users, scope_maps, tokens) and decides
-- from its copy; only argon2id hashes of passwords are stored or sent.
CREATE TABLE users (
  name text PRIMARY KEY,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scope_maps (
  name text PRIMARY KEY,
  repositories text[] NOT NULL CHECK (cardinality(repositories) > 0),
  actions text[] NOT NULL CHECK (cardinality(actions) > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tokens (
  name text PRIMARY KEY,
  scope_map text NOT NULL REFERENCES scope_maps (name) ON DELETE RESTRICT,
  password1_hash text,
  password2_hash text,
  expires_at timestamptz,
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The cluster's key set: the public key of every region's signing key, as each region last
-- published it. A key its region no longer publishes stays listed for a while (the control
-- plane's retention), so tokens it signed go on verifying everywhere until they expire.
CREATE TABLE cluster_signing_keys (
  kid text PRIMARY KEY,
  region text NOT NULL,
  public_jwk jsonb NOT NULL,
  first_published_at timestamptz NOT NULL DEFAULT now(),
  last_published_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE cluster_signing_keys;
DROP TABLE tokens;
DROP TABLE scope_maps;
DROP TABLE users;

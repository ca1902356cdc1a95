-- Up Migration

-- Who may use the region, when MERIDIAN_AUTH is on. Users are administrators; tokens are
-- scoped to one scope map each. Users and tokens share one namespace of names (the name a
-- client gives with its password), which the identity service keeps. Only argon2id hashes of
-- passwords are stored.
CREATE TABLE users (
  name text PRIMARY KEY,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Repository patterns (a name, PREFIX/* or *) and the actions allowed on them.
CREATE TABLE scope_maps (
  name text PRIMARY KEY,
  repositories text[] NOT NULL CHECK (cardinality(repositories) > 0),
  actions text[] NOT NULL CHECK (cardinality(actions) > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Two password slots, rotated independently, so a client can move to the new password while
-- the old one still works. A scope map in use by a token cannot be deleted.
CREATE TABLE tokens (
  name text PRIMARY KEY,
  scope_map text NOT NULL REFERENCES scope_maps (name) ON DELETE RESTRICT,
  password1_hash text,
  password2_hash text,
  expires_at timestamptz,
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The keys that sign the region's access tokens (JWK). The oldest one signs; more rows let a
-- key be rotated in later while tokens signed by the old one still verify.
CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  private_jwk jsonb NOT NULL,
  public_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE signing_keys;
DROP TABLE tokens;
DROP TABLE scope_maps;
DROP TABLE users;

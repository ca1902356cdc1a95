-- Up Migration

-- In a cluster, a region verifies tokens signed by every region: the public keys of the others
-- are kept here too, without a private part, and named by their region. The region signs only
-- with a key it holds the private part of.
ALTER TABLE signing_keys ALTER COLUMN private_jwk DROP NOT NULL;
ALTER TABLE signing_keys ADD COLUMN region text;

-- Down Migration
DELETE FROM signing_keys WHERE private_jwk IS NULL;
ALTER TABLE signing_keys DROP COLUMN region;
ALTER TABLE signing_keys ALTER COLUMN private_jwk SET NOT NULL;

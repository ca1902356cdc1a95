-- Up Migration

-- The newest delete of each manifest, kept even while a newer put holds the row (then `deleted`
-- is false and hlc/origin are the put's). A tag write older than that delete went with it in
-- clock order, and may arrive after the put brought the manifest back: only the delete's clock,
-- kept, refuses it whatever the order (CatalogStore.apply). `delete_change_id` is the delete the
-- refused tag's tombstone names, the change reconciliation repeats.
ALTER TABLE catalog_manifests
  ADD COLUMN delete_hlc bigint,
  ADD COLUMN delete_origin text COLLATE "C",
  ADD COLUMN delete_change_id bigint REFERENCES changes (id);
UPDATE catalog_manifests SET delete_hlc = hlc, delete_origin = origin, delete_change_id = change_id WHERE deleted;

-- Down Migration
ALTER TABLE catalog_manifests DROP COLUMN delete_hlc, DROP COLUMN delete_origin, DROP COLUMN delete_change_id;

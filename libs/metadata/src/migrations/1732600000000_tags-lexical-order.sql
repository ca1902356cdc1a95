-- Up Migration

-- distribution-spec v1.1 "Listing Tags": tags MUST be in lexical order, "i.e. case-insensitive
-- alphanumeric order". Tags are ASCII (the tag grammar), so lower() in the C collation is that
-- order; the name itself breaks ties between tags that differ only in case, so the order is
-- total and `last` pages through it exactly. The index serves both the order and the range.
CREATE INDEX tags_lexical_idx ON tags (repository_id, lower(name), name);

-- Down Migration
DROP INDEX tags_lexical_idx;

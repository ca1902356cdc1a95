import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareTagsLexically } from '@meridian/oci';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { MetadataStores } from './metadata.js';
import { localClock } from './clock.js';

/**
 * The tag list's order in Postgres (distribution-spec v1.1 "Listing Tags": "lexical order (i.e.
 * case-insensitive alphanumeric order)") must be the order the gateway pages its cached lists
 * in (`compareTagsLexically`), or a client paging with `last` would skip or repeat tags when
 * one page came from the cache and the next from the database.
 */
let database: TestDatabase;
let pool: pg.Pool;
let stores: MetadataStores;
let repositoryId: number;
const TAGS = ['ZZ', 'b', 'latest', 'Beta', 'a-b', '1.10', 'B', 'alpha', 'z_last', '1.0', 'Charlie', 'a', 'c', '1.9', 'v1', 'V1', '_x', 'A_'];

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  pool.on('error', () => undefined);
  stores = new MetadataStores(pool);
  const repository = 'order/tags';
  const digest = `sha256:${'1'.repeat(64)}`;
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  for (const tag of TAGS) {
    await stores.manifestPushes.push({
      repository,
      digest,
      mediaType,
      payload: Buffer.from('{}'),
      blobs: [],
      children: [],
      heldElsewhere: new Map(),
      tag,
      clock: localClock('test'),
      change: { kind: 'manifest.put', repository, digest, mediaType, size: 2, tag },
      audit: { region: 'test', action: 'push', target: `${repository}:${tag}`, outcome: 'success' },
      announce: [],
    });
  }
  repositoryId = await stores.repositories.requireId(repository);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('tag list order ("Listing Tags")', () => {
  it('is case-insensitive, with the same order as the gateway\'s cached lists', async () => {
    const expected = [...TAGS].sort(compareTagsLexically);
    expect(expected.slice(0, 8)).toEqual(['1.0', '1.10', '1.9', '_x', 'a', 'a-b', 'A_', 'alpha']);
    expect(await stores.tags.list(repositoryId, 100)).toEqual(expected);
  });

  it('pages after any `last` exactly, one tag at a time, and after a name that is no tag', async () => {
    const expected = [...TAGS].sort(compareTagsLexically);
    const walked: string[] = [];
    let last: string | undefined;
    for (;;) {
      const [next] = await stores.tags.list(repositoryId, 1, last);
      if (next === undefined) break;
      walked.push(next);
      last = next;
    }
    expect(walked).toEqual(expected);
    for (const probe of ['bz', 'BZ', 'b0', '0', '~']) {
      expect(await stores.tags.list(repositoryId, 100, probe)).toEqual(expected.filter((tag) => compareTagsLexically(tag, probe) > 0));
    }
  });
});

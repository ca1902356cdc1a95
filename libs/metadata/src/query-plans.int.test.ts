import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { Metadata, MetadataStores } from './metadata.js';
import type { Queryable } from './db.js';

/**
 * Issue #2: queries are indexed and do bounded work; no table scans on the pull path. Each
 * store method runs through a connection that EXPLAINs instead of executing, with sequential
 * scans priced out, so a plan still holding a Seq Scan means no index can serve that query.
 */
let database: TestDatabase;
let pool: pg.Pool;
let explainer: pg.Client;
let plans: Array<{ name: string; nodes: string[] }>;

function planNodes(plan: Record<string, unknown>): string[] {
  const children = (plan.Plans as Array<Record<string, unknown>> | undefined) ?? [];
  return [`${plan['Node Type']}${plan['Relation Name'] ? ` on ${plan['Relation Name']}` : ''}`, ...children.flatMap(planNodes)];
}

/** A Queryable that records the plan of every query instead of running it. */
function explaining(client: pg.Client): Queryable {
  return {
    query: (async (config: pg.QueryConfig) => {
      const result = await client.query({ text: `EXPLAIN (FORMAT JSON) ${config.text}`, values: config.values ?? [] });
      const plan = (result.rows[0] as { 'QUERY PLAN': Array<{ Plan: Record<string, unknown> }> })['QUERY PLAN'][0]!.Plan;
      plans.push({ name: config.name ?? config.text, nodes: planNodes(plan) });
      return { rows: [], rowCount: 0 };
    }) as unknown as pg.Pool['query'],
  };
}

beforeAll(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  // Dropping the database WITH (FORCE) may end a client the pool has not closed yet.
  pool.on('error', () => undefined);
  const metadata = new Metadata(pool);
  // Enough rows that the statistics are not all-empty.
  for (let r = 0; r < 20; r++) {
    const repositoryId = await metadata.repositories.ensure(`plan/repo${r}`);
    for (let b = 0; b < 20; b++) await metadata.blobs.link(repositoryId, `sha256:${String(r).padStart(2, '0')}${String(b).padStart(62, '0')}`, 10);
  }
  await pool.query('ANALYZE');
  explainer = new pg.Client({ connectionString: database.url });
  await explainer.connect();
  await explainer.query('SET enable_seqscan = off');
});

afterAll(async () => {
  await explainer?.end();
  await pool?.end();
  await database?.drop();
});

describe('query plans of the pull path and of paging', () => {
  it('use indexes, never a sequential scan', async () => {
    plans = [];
    const stores = new MetadataStores(explaining(explainer));
    const digest = `sha256:${'a'.repeat(64)}`;
    await stores.manifests.findByTag('plan/repo1', 'latest');
    await stores.manifests.findByDigest('plan/repo1', digest);
    await stores.blobs.findInRepository('plan/repo1', digest);
    await stores.blobs.findLinkedAnywhere(digest);
    await stores.blobs.sizesInRepository(1, [digest, `sha256:${'b'.repeat(64)}`]);
    await stores.manifests.sizesInRepository(1, [digest]);
    await stores.manifests.indexesListing(1, digest, 5);
    await stores.manifests.referrers(1, digest, { artifactType: 'application/example', limit: 100, after: digest });
    await stores.tags.list(1, 100);
    await stores.tags.list(1, 100, 'v1');
    await stores.repositories.list(100, 'plan/repo3');
    await stores.repositories.findId('plan/repo1');

    expect(plans.length).toBe(12);
    for (const plan of plans) {
      expect(plan.nodes.filter((node) => node.startsWith('Seq Scan')), `${plan.name}: ${plan.nodes.join(' > ')}`).toEqual([]);
    }
  });
});

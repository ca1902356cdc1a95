/**
 * The region's audit log with MERIDIAN_AUTH=off: every push (manifest PUT) and delete (manifest,
 * tag, blob) is recorded, anonymous, with the client's address and the region, in the write's
 * own transaction (a refused write leaves no entry), and `GET /api/v1/audit` pages through it.
 * Uploading blob bytes is not audited: a push is audited once, by its manifest.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '@meridian/testkit';
import type { AuditPage, AuditRecord } from '@meridian/proto';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway({ MERIDIAN_REGION: 'eu-west' });
});

afterAll(async () => {
  await gateway?.close();
});


async function auditPage(query: string): Promise<{ status: number; body: AuditPage }> {
  const response = await fetch(`${gateway.url}/api/v1/audit${query}`);
  return { status: response.status, body: (await response.json()) as AuditPage };
}

describe('the audit log of a lone region (MERIDIAN_AUTH=off)', () => {
  let since: string;

  it('records pushes and deletes of manifests, tags and blobs, anonymous, with address and region', async () => {
    since = new Date(Date.now() - 1000).toISOString();
    const { client } = gateway;
    const image = await client.pushImage('team/app', 'v1', buildImage());
    // No entry for the blob uploads: only the manifest PUT is the push.
    let { body } = await auditPage(`?since=${since}`);
    expect(body.entries.map((entry) => [entry.action, entry.target])).toEqual([['push', 'team/app:v1']]);
    expect(body.entries[0]).toMatchObject({
      region: 'eu-west',
      identity: null,
      address: expect.stringMatching(/127\.0\.0\.1$/),
      forwardedFor: null,
      outcome: 'success',
      detail: { digest: image.digest },
    });

    // distribution-spec v1.1 "Deleting tags", "Deleting manifests", "Deleting blobs"; a proxy's X-Forwarded-For is kept as claimed.
    expect((await client.pushManifest('team/app', 'v2', image.manifestBytes, image.mediaType)).status).toBe(201);
    const forwarded = { 'x-forwarded-for': '198.51.100.23' };
    expect((await client.fetch(client.url('manifest', { name: 'team/app', reference: 'v2' }), { method: 'DELETE', headers: forwarded })).status).toBe(202);
    expect((await client.fetch(client.url('manifest', { name: 'team/app', reference: image.digest }), { method: 'DELETE' })).status).toBe(202);
    const layer = image.layers[0]!;
    expect((await client.fetch(client.url('blob', { name: 'team/app', digest: layer.digest }), { method: 'DELETE' })).status).toBe(202);

    ({ body } = await auditPage(`?since=${since}`));
    expect(body.entries.map((entry) => [entry.action, entry.target, entry.outcome])).toEqual([
      ['push', 'team/app:v1', 'success'],
      ['push', 'team/app:v2', 'success'],
      ['delete', 'team/app:v2', 'success'],
      ['delete', `team/app@${image.digest}`, 'success'],
      ['delete', `team/app@${layer.digest}`, 'success'],
    ]);
    expect(body.entries[2]!.forwardedFor).toBe('198.51.100.23');
    expect(body.entries[4]!.detail).toEqual({ blob: true });
  });

  it('records nothing for a write that is refused (the entry is in the write\'s transaction)', async () => {
    const before = (await auditPage(`?since=${since}&limit=1000`)).body.entries.length;
    const { client } = gateway;
    const image = buildImage();
    // MANIFEST_BLOB_UNKNOWN: the manifest names blobs the repository lacks.
    expect((await client.pushManifest('team/refused', 'v1', image.manifestBytes, image.mediaType)).status).toBe(400);
    expect((await client.fetch(client.url('manifest', { name: 'team/app', reference: 'nope' }), { method: 'DELETE' })).status).toBe(404);
    expect((await auditPage(`?since=${since}&limit=1000`)).body.entries.length).toBe(before);
  });

  it('pages through the log with limit and next, and refuses a bad query', async () => {
    const all = (await auditPage(`?since=${since}&limit=1000`)).body.entries;
    expect(all.length).toBe(5);
    const paged: AuditRecord[] = [];
    let query = `?since=${since}&limit=2`;
    for (;;) {
      const { status, body } = await auditPage(query);
      expect(status).toBe(200);
      expect(body.entries.length).toBeLessThanOrEqual(2);
      paged.push(...body.entries);
      if (!body.next) break;
      query = `?since=${since}&limit=2&after=${body.next}`;
    }
    expect(paged.map((entry) => entry.id)).toEqual(all.map((entry) => entry.id));
    for (const bad of ['?limit=0', '?limit=1001', '?since=yesterday', '?after=x']) {
      const { status, body } = await auditPage(bad);
      expect(status, bad).toBe(400);
      expect((body as unknown as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNSUPPORTED');
    }
  });

  it('deletes the entries older than MERIDIAN_AUDIT_RETENTION_DAYS (365 by default) and keeps the others', async () => {
    // The schedule's first round ran at the start; stop it, so that the round counted below is the test's own.
    await gateway.gateway.auditRetention.stop();
    const database = new pg.Client({ connectionString: gateway.database.url });
    await database.connect();
    try {
      await database.query(`INSERT INTO audit_log (at, region, action, target, outcome) VALUES (now() - interval '366 days', 'eu-west', 'push', 'team/old:v1', 'success')`);
    } finally {
      await database.end();
    }
    const before = (await auditPage('?limit=1000')).body.entries.map((entry) => entry.target);
    expect(before).toContain('team/old:v1');
    expect(await gateway.gateway.auditRetention.pruneOnce()).toBe(1);
    const after = (await auditPage('?limit=1000')).body.entries.map((entry) => entry.target);
    expect(after).toEqual(before.filter((target) => target !== 'team/old:v1'));
  });
});

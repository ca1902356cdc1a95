/**
 * Every write a client makes to a region lands in the region's outbox, in the transaction (or
 * the single statement) that makes it, and a write that fails leaves nothing there: the outbox
 * is what replicates, so it must hold exactly what committed.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, sha256 } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

let gateway: TestGateway;
let db: pg.Pool;

beforeAll(async () => {
  gateway = await startTestGateway({ MERIDIAN_REGION: 'eu-west' });
  db = new pg.Pool({ connectionString: gateway.database.url, max: 1 });
});

afterAll(async () => {
  await db?.end();
  await gateway?.close();
});

/** The outbox's change bodies in append order, emptied after reading. */
async function takeOutbox(): Promise<Array<Record<string, unknown>>> {
  const rows = await db.query<{ seq: number; body: Record<string, unknown>; hlc: string }>('DELETE FROM outbox RETURNING seq, hlc::text, body');
  // Every change carries a clock stamped now (wall milliseconds << 16).
  for (const row of rows.rows) expect(BigInt(row.hlc)).toBeGreaterThan(BigInt(Date.now() - 600_000) << 16n);
  return rows.rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map((row) => row.body);
}

describe('the outbox (what replicates)', () => {
  it('records blob links, the manifest with its tag, mounts and deletes, in order', async () => {
    const { client } = gateway;
    const image = await client.pushImage('team/app', 'v1', buildImage());
    const blobs = [image.config, ...image.layers];
    expect(await takeOutbox()).toEqual([
      ...blobs.map((blob) => ({ kind: 'blob.link', repository: 'team/app', digest: blob.digest, size: blob.bytes.length })),
      { kind: 'manifest.put', repository: 'team/app', digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length, tag: 'v1' },
    ]);

    // distribution-spec "Mounting a blob": a link made without bytes moving replicates too.
    const layer = image.layers[0]!;
    const mounted = await client.fetch(client.url('blob-upload', { name: 'team/other' }, { mount: layer.digest, from: 'team/app' }), { method: 'POST' });
    expect(mounted.status).toBe(201);
    expect(await takeOutbox()).toEqual([{ kind: 'blob.link', repository: 'team/other', digest: layer.digest, size: layer.bytes.length }]);

    // "Deleting tags", "Deleting manifests", "Deleting blobs".
    expect((await client.pushManifest('team/app', 'v2', image.manifestBytes, image.mediaType)).status).toBe(201);
    expect((await client.fetch(client.url('manifest', { name: 'team/app', reference: 'v2' }), { method: 'DELETE' })).status).toBe(202);
    expect((await client.fetch(client.url('manifest', { name: 'team/app', reference: image.digest }), { method: 'DELETE' })).status).toBe(202);
    expect((await client.fetch(client.url('blob', { name: 'team/other', digest: layer.digest }), { method: 'DELETE' })).status).toBe(202);
    expect(await takeOutbox()).toEqual([
      { kind: 'manifest.put', repository: 'team/app', digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length, tag: 'v2' },
      { kind: 'tag.delete', repository: 'team/app', tag: 'v2' },
      { kind: 'manifest.delete', repository: 'team/app', digest: image.digest },
      { kind: 'blob.unlink', repository: 'team/other', digest: layer.digest },
    ]);
  });

  it('records a chunked upload once, when its PUT commits it', async () => {
    const { client } = gateway;
    const bytes = Buffer.from('chunked bytes for the outbox');
    const opened = await client.fetch(client.url('blob-upload', { name: 'team/chunked' }), { method: 'POST' });
    const location = client.resolve(opened.headers.get('location')!);
    const patched = await client.fetch(location, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${bytes.length - 1}` },
      body: bytes,
    });
    expect(patched.status).toBe(202);
    expect(await takeOutbox()).toEqual([]);
    const url = new URL(client.resolve(patched.headers.get('location')!));
    url.searchParams.set('digest', sha256(bytes));
    expect((await client.fetch(url.toString(), { method: 'PUT' })).status).toBe(201);
    expect(await takeOutbox()).toEqual([{ kind: 'blob.link', repository: 'team/chunked', digest: sha256(bytes), size: bytes.length }]);
  });

  it('records nothing for a write that is refused', async () => {
    const { client } = gateway;
    const image = buildImage();
    // The manifest names blobs the repository lacks: MANIFEST_BLOB_UNKNOWN, and no trace of it.
    expect((await client.pushManifest('team/refused', 'v1', image.manifestBytes, image.mediaType)).status).toBe(400);
    // A tag that is not there.
    expect((await client.fetch(client.url('manifest', { name: 'team/app', reference: 'nope' }), { method: 'DELETE' })).status).toBe(404);
    expect(await takeOutbox()).toEqual([]);
  });
});

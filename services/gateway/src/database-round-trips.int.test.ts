/**
 * How many statements a push sends to Postgres. Each one is a round trip that costs the gateway
 * a write and a read on its socket and Postgres a statement, and a small image's push is mostly
 * such costs. A count, not a timing: a change that adds a statement to these paths fails here and
 * has to say why it needs it.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

let gateway: TestGateway;

beforeAll(async () => {
  // Audit retention's first round is a transaction of its own, run as the gateway starts, that a
  // slow machine may still be running while a count is taken: off here (0 keeps every entry).
  gateway = await startTestGateway({ MERIDIAN_AUDIT_RETENTION_DAYS: '0' });
});

afterAll(async () => {
  await gateway?.close();
});

/**
 * The statements the in-process gateway sends while `work` runs. Every query of the pool and of
 * a transaction's client goes through Client#query; the change listener's heartbeat (a NOTIFY on
 * its own channel, every few seconds) is no part of a request and is left out.
 */
async function statementsDuring(work: () => Promise<void>): Promise<string[]> {
  const sent: string[] = [];
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const config = args[0] as string | { name?: string; text?: string };
    const text = typeof config === 'string' ? config : (config.name ?? config.text ?? '');
    if (!text.startsWith('NOTIFY meridian_heartbeat_')) sent.push(text);
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  try {
    await work();
  } finally {
    pg.Client.prototype.query = query;
  }
  return sent;
}

describe('Postgres round trips of a push', () => {
  // distribution-spec v1.1 "Pushing Manifests": the manifest PUT by tag of an image whose blobs
  // are in the repository. Verifying the references, storing the manifest and its tag, the
  // outbox record, the audit entry and the change notices are one statement, its own transaction.
  it('a manifest PUT by tag is one statement', async () => {
    const { client } = gateway;
    const image = buildImage();
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('round-trips/app', blob.bytes);
    const sent = await statementsDuring(async () => {
      expect((await client.pushManifest('round-trips/app', 'v1', image.manifestBytes, image.mediaType)).status).toBe(201);
    });
    expect(sent).toEqual(['manifest-push']);
  });

  // The same manifest under a second tag: the stored row is found and tagged in that statement.
  it('a manifest PUT of a manifest already stored, under another tag, is one statement', async () => {
    const { client } = gateway;
    const image = await client.pushImage('round-trips/again', 'v1');
    const sent = await statementsDuring(async () => {
      expect((await client.pushManifest('round-trips/again', 'v2', image.manifestBytes, image.mediaType)).status).toBe(201);
    });
    expect(sent).toEqual(['manifest-push']);
  });

  // containerd and skopeo HEAD each blob before pushing it, and containerd the manifest's tag
  // ("Checking if content exists in the registry"): for content not there yet, one lookup each.
  it('a HEAD of a blob or a tag the repository does not hold yet is one statement each', async () => {
    const { client } = gateway;
    const image = await client.pushImage('round-trips/heads', 'v1');
    const unknown = `sha256:${'0'.repeat(64)}`;
    const blobHead = await statementsDuring(async () => {
      expect((await client.fetch(client.url('blob', { name: 'round-trips/heads', digest: unknown }), { method: 'HEAD' })).status).toBe(404);
    });
    expect(blobHead).toEqual(['blob-find-in-repository']);
    const tagHead = await statementsDuring(async () => {
      expect((await client.fetch(client.url('manifest', { name: 'round-trips/heads', reference: 'v2' }), { method: 'HEAD' })).status).toBe(404);
    });
    expect(tagHead).toEqual(['manifest-find-by-tag']);
    expect(image.response.status).toBe(201);
  });
});

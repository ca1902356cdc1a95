/**
 * How many statements a push sends to Postgres. Each one is a round trip that costs the gateway
 * a write and a read on its socket and Postgres a statement, and a small image's push is mostly
 * such costs. A count, not a timing: a change that adds a statement to these paths fails here and
 * has to say why it needs it.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

let gateway: TestGateway;
/** The statements sent while statementsDuring runs; undefined otherwise. */
let recording: string[] | undefined;

beforeAll(async () => {
  // Audit retention's first round is a transaction of its own, run as the gateway starts, that a
  // slow machine may still be running while a count is taken: off here (0 keeps every entry).
  gateway = await startTestGateway({ MERIDIAN_AUDIT_RETENTION_DAYS: '0' });
  // Every statement of a request goes through a client the gateway's pool hands out, to
  // pool.query or to a transaction: each such client's query is wrapped the first time it is
  // handed out. Only this gateway's pool is watched, not pg's shared prototype, so nothing else
  // in the process (the change listener's heartbeat, the test's own queries) is counted.
  const watched = new WeakSet<pg.PoolClient>();
  gateway.gateway.pool.on('acquire', (client) => {
    if (watched.has(client)) return;
    watched.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      const config = args[0] as string | { name?: string; text?: string };
      recording?.push(typeof config === 'string' ? config : (config.name ?? config.text ?? ''));
      return query(...args);
    }) as typeof client.query;
  });
});

afterAll(async () => {
  await gateway?.close();
});

/** The statements the in-process gateway sends to Postgres while `work` runs. */
async function statementsDuring(work: () => Promise<void>): Promise<string[]> {
  const sent: string[] = [];
  recording = sent;
  try {
    await work();
  } finally {
    recording = undefined;
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

describe('Postgres round trips of a blob upload', () => {
  const name = 'round-trips/blobs';
  const octets = { 'Content-Type': 'application/octet-stream' };

  /** POST /v2/<name>/blobs/uploads/ and the session's URL from its Location. */
  async function open(): Promise<string> {
    const response = await gateway.client.fetch(gateway.client.url('blob-upload', { name }), { method: 'POST' });
    expect(response.status).toBe(202);
    return gateway.client.resolve(response.headers.get('location')!);
  }

  function withDigest(location: string, digest: string): string {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    return url.toString();
  }

  beforeAll(async () => {
    // The repository exists, as it does for every blob but the first one of a push.
    await gateway.client.pushBlob(name, buildImage().config.bytes);
  });

  // distribution-spec v1.1 "POST then PUT": opening a session. The session is its signed
  // `_state` alone; the closing PUT is the first request that writes anything.
  it('a POST that opens a session sends no statement', async () => {
    const sent = await statementsDuring(async () => void (await open()));
    expect(sent).toEqual([]);
  });

  // "POST then PUT": the PUT ?digest= with the whole blob closes the session.
  it('a PUT with the whole blob, closing a session with no chunk, is one statement', async () => {
    const { bytes, digest } = buildImage().layers[0]!;
    const location = await open();
    const sent = await statementsDuring(async () => {
      const response = await gateway.client.fetch(withDigest(location, digest), { method: 'PUT', headers: octets, body: bytes as BodyInit });
      expect(response.status).toBe(201);
    });
    expect(sent).toEqual(['upload-complete-as-blob']);
  });

  // "Pushing a blob in chunks": a PATCH, then the PUT ?digest= with no body (skopeo, docker).
  it('a PATCH is one statement, and the PUT closing its session one more', async () => {
    const { bytes, digest } = buildImage().layers[0]!;
    const location = await open();
    let next = '';
    const patch = await statementsDuring(async () => {
      const response = await gateway.client.fetch(location, { method: 'PATCH', headers: octets, body: bytes as BodyInit });
      expect(response.status).toBe(202);
      next = gateway.client.resolve(response.headers.get('location')!);
    });
    expect(patch).toEqual(['upload-is-closed']);
    const put = await statementsDuring(async () => {
      expect((await gateway.client.fetch(withDigest(next, digest), { method: 'PUT' })).status).toBe(201);
    });
    expect(put).toEqual(['upload-complete-as-blob']);
  });

  // "POST then PUT" into a repository with no row yet (the first blob of its first push): the
  // POST does not make it; the closing statement finds no repository and changes nothing, the
  // repository is made, and the closing statement runs again (the close and the link in one).
  it('the PUT closing the first session of a new repository makes the repository: three statements more', async () => {
    const { bytes, digest } = buildImage().layers[0]!;
    const response = await gateway.client.fetch(gateway.client.url('blob-upload', { name: 'round-trips/new' }), { method: 'POST' });
    const location = gateway.client.resolve(response.headers.get('location')!);
    const sent = await statementsDuring(async () => {
      expect((await gateway.client.fetch(withDigest(location, digest), { method: 'PUT', headers: octets, body: bytes as BodyInit })).status).toBe(201);
    });
    expect(sent).toEqual(['upload-complete-as-blob', 'repository-find-id', 'repository-insert', 'upload-complete-as-blob']);
  });

  // "Pushing a blob monolithically": POST ?digest= with the bytes.
  it('a monolithic POST is one statement', async () => {
    const { bytes } = buildImage().layers[0]!;
    const sent = await statementsDuring(async () => void (await gateway.client.pushBlob(name, bytes)));
    expect(sent).toEqual(['blob-link-local']);
  });
});

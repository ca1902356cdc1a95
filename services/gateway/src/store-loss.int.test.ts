import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANGE_CHANNEL, type MetadataChange } from '@meridian/metadata';
import { OciTestClient, buildImage, errorCodes, sha256 } from '@meridian/testkit';
import { createApp, type Gateway } from './app.js';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

/**
 * A blob store that loses its bytes while the gateway runs (the data directory deleted, a lost
 * volume, a file cut short): a blob whose bytes are missing is never reported present
 * (distribution-spec v1.1 "Pulling blobs": 404 BLOB_UNKNOWN), the first request to find it says
 * so in the log, naming the digest and the file, and a push of the blob stores it again
 * ("Pushing blobs"). A manifest naming it is refused until then ("Pushing manifests":
 * MANIFEST_BLOB_UNKNOWN). /readyz says the store is gone while its root is; /healthz stays 200.
 */
let harness: TestGateway;
let client: OciTestClient;

beforeAll(async () => {
  harness = await startTestGateway({}, { captureLogs: true });
  client = harness.client;
});
afterAll(async () => harness?.close());

function blobFile(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(harness.config.dataDir, 'store', 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function head(name: string, digest: string): Promise<Response> {
  return client.fetch(client.url('blob', { name, digest }), { method: 'HEAD' });
}

/** Error lines of the log that name `text`. */
function errorsNaming(text: string): Array<Record<string, unknown>> {
  return harness.logs.filter((line) => line.level === 50 && JSON.stringify(line).includes(text));
}

/** A push the way docker, podman and skopeo make it: POST a session, then PUT the whole blob. */
async function pushByPostThenPut(name: string, bytes: Buffer): Promise<Response> {
  const started = await client.fetch(client.url('blob-upload', { name }), { method: 'POST' });
  expect(started.status).toBe(202);
  const location = new URL(client.resolve(started.headers.get('location')!));
  location.searchParams.set('digest', sha256(bytes));
  return client.fetch(location.toString(), { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes as BodyInit });
}

async function readyz(): Promise<{ status: number; body: { status: string; checks: Record<string, { ok: boolean; error?: string }> } }> {
  const response = await fetch(`${harness.url}/readyz`);
  return { status: response.status, body: (await response.json()) as never };
}

describe('the data directory deleted while the gateway runs', () => {
  it('answers 404 BLOB_UNKNOWN for blobs it held, logs each lost blob once with its path, refuses manifests naming them, and heals on a re-push ("Pulling blobs", "Pushing blobs", "Pushing manifests")', async () => {
    const image = await client.pushImage('loss/app', 'v1', buildImage({ layers: 2, layerSize: 4096 }));
    const [layer, otherLayer] = image.layers;
    await client.pushBlob('loss/other', layer!.bytes);
    // Cached as present by the HEADs a pull makes.
    expect((await head('loss/app', layer!.digest)).status).toBe(200);
    expect((await head('loss/other', layer!.digest)).status).toBe(200);
    expect((await readyz()).status).toBe(200);

    await rm(harness.config.dataDir, { recursive: true, force: true });

    const lost = await head('loss/app', layer!.digest);
    expect(lost.status).toBe(404);
    const get = await client.fetch(client.url('blob', { name: 'loss/app', digest: layer!.digest }));
    expect(get.status).toBe(404);
    expect(await errorCodes(get)).toEqual(['BLOB_UNKNOWN']);
    // The blob is the region's, so it is gone from every repository that links it.
    expect((await head('loss/other', layer!.digest)).status).toBe(404);
    // Logged once, by the request that found it, with the digest and the file it looked for.
    const logged = errorsNaming(layer!.digest);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ digest: layer!.digest, path: blobFile(layer!.digest) });
    expect(String(logged[0]!.msg)).toContain(blobFile(layer!.digest));

    // The store's root is gone: not ready, but alive.
    const notReady = await readyz();
    expect(notReady.status).toBe(503);
    expect(notReady.body.checks.blobStore).toEqual({ ok: false, error: "the blob store's root is gone" });
    expect(notReady.body.checks.database).toEqual({ ok: true });
    expect((await fetch(`${harness.url}/healthz`)).status).toBe(200);

    // Nobody asked for the config or the other layer since the loss: the manifest push finds them.
    const refused = await client.pushManifest('loss/app', 'v2', image.manifestBytes);
    expect(refused.status).toBe(400);
    const refusal = (await refused.json()) as { errors: Array<{ code: string; detail: { blobs: string[] } }> };
    expect(refusal.errors[0]!.code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(refusal.errors[0]!.detail.blobs.sort()).toEqual([image.config.digest, layer!.digest, otherLayer!.digest].sort());

    // The client pushes again what HEAD said is missing, both ways clients push.
    expect((await pushByPostThenPut('loss/app', layer!.bytes)).status).toBe(201);
    await client.pushBlob('loss/app', otherLayer!.bytes);
    await client.pushBlob('loss/app', image.config.bytes);
    expect((await head('loss/app', layer!.digest)).status).toBe(200);
    expect((await head('loss/other', layer!.digest)).status).toBe(200);
    const pulled = await client.fetch(client.url('blob', { name: 'loss/app', digest: layer!.digest }));
    expect(pulled.status).toBe(200);
    expect(Buffer.from(await pulled.arrayBuffer()).equals(layer!.bytes)).toBe(true);
    expect((await stat(blobFile(otherLayer!.digest))).size).toBe(otherLayer!.bytes.length);
    expect((await client.pushManifest('loss/app', 'v2', image.manifestBytes)).status).toBe(201);

    expect(await readyz()).toMatchObject({ status: 200, body: { status: 'ready' } });
    expect((await fetch(`${harness.url}/healthz`)).status).toBe(200);
  });

  it('a blob whose file was cut short is not served, and a push of it writes it whole again ("Pulling blobs")', async () => {
    const bytes = randomBytes(10_000);
    const digest = await client.pushBlob('loss/short', bytes);
    await truncate(blobFile(digest), 100);

    expect((await head('loss/short', digest)).status).toBe(404);
    expect(errorsNaming(digest)[0]).toMatchObject({ digest, path: blobFile(digest) });
    expect(String(errorsNaming(digest)[0]!.msg)).toContain('100 bytes, not 10000');

    expect((await pushByPostThenPut('loss/short', bytes)).status).toBe(201);
    const pulled = await client.fetch(client.url('blob', { name: 'loss/short', digest }));
    expect(pulled.status).toBe(200);
    expect(Buffer.from(await pulled.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('a blob whose file comes back (a volume restored) is served again without a push ("Pulling blobs")', async () => {
    const bytes = randomBytes(2000);
    const digest = await client.pushBlob('loss/restored', bytes);
    const backup = `${blobFile(digest)}.backup`;
    await copyFile(blobFile(digest), backup);
    await rm(blobFile(digest));
    expect((await head('loss/restored', digest)).status).toBe(404);

    await copyFile(backup, blobFile(digest));
    expect((await head('loss/restored', digest)).status).toBe(200);
    expect(harness.logs.some((line) => line.level === 30 && line.digest === digest && String(line.msg).includes('served again'))).toBe(true);
    // Present again in the metadata: a manifest naming it is taken.
    const image = buildImage({ layers: 0 });
    await client.pushBlob('loss/restored', image.config.bytes);
    const manifest = { ...image.manifest, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: bytes.length }] };
    expect((await client.pushManifest('loss/restored', 'v1', manifest)).status).toBe(201);
  });

  it('a mount of a lost blob falls back to an upload, which stores it again ("Mounting a blob")', async () => {
    const bytes = randomBytes(3000);
    const digest = await client.pushBlob('loss/mount-source', bytes);
    await rm(blobFile(digest));
    const mount = await client.fetch(client.url('blob-upload', { name: 'loss/mount-target' }, { mount: digest, from: 'loss/mount-source' }), {
      method: 'POST',
    });
    expect(mount.status).toBe(202);
    expect(errorsNaming(digest)).toHaveLength(1);
    expect((await pushByPostThenPut('loss/mount-target', bytes)).status).toBe(201);
    expect((await head('loss/mount-source', digest)).status).toBe(200);
    // And with the bytes back, a mount links it.
    const again = await client.fetch(client.url('blob-upload', { name: 'loss/mount-other' }, { mount: digest, from: 'loss/mount-source' }), {
      method: 'POST',
    });
    expect(again.status).toBe(201);
  });
});

describe('the other gateways of the region', () => {
  let second: Gateway;
  let secondClient: OciTestClient;
  let listener: pg.Client;
  const heard: MetadataChange[] = [];

  beforeAll(async () => {
    second = await createApp(harness.config, pino({ level: 'silent' }));
    secondClient = new OciTestClient(await second.listen());
    listener = new pg.Client({ connectionString: harness.database.url });
    await listener.connect();
    listener.on('notification', (message) => heard.push(JSON.parse(message.payload!) as MetadataChange));
    await listener.query(`LISTEN ${CHANGE_CHANNEL}`);
  });
  afterAll(async () => {
    await listener?.end();
    await second?.close();
  });

  it('hear that a blob lost its bytes, for every repository linking it, as a blob delete is announced', async () => {
    const bytes = randomBytes(1500);
    const digest = await client.pushBlob('coherent/a', bytes);
    await client.pushBlob('coherent/b', bytes);
    // Both gateways have it cached.
    expect((await secondClient.fetch(secondClient.url('blob', { name: 'coherent/a', digest }), { method: 'HEAD' })).status).toBe(200);
    expect((await head('coherent/a', digest)).status).toBe(200);
    await rm(blobFile(digest));

    expect((await head('coherent/a', digest)).status).toBe(404);
    await expect.poll(() => heard.filter((change) => change.kind === 'blob' && change.digest === digest).map((c) => c.repository).sort()).toEqual([
      'coherent/a',
      'coherent/b',
    ]);
    expect((await secondClient.fetch(secondClient.url('blob', { name: 'coherent/a', digest }), { method: 'HEAD' })).status).toBe(404);
    expect((await secondClient.fetch(secondClient.url('blob', { name: 'coherent/b', digest }), { method: 'HEAD' })).status).toBe(404);
    // The first gateway found it first; the second says nothing more.
    expect(errorsNaming(digest)).toHaveLength(1);

    // Healed through the second gateway, served by both.
    const started = await secondClient.fetch(secondClient.url('blob-upload', { name: 'coherent/b' }, { digest }), { method: 'POST', body: bytes as BodyInit });
    expect(started.status).toBe(201);
    expect((await head('coherent/a', digest)).status).toBe(200);
  });

  it('write the bytes of a re-push again even when the folders the store made are gone', async () => {
    await mkdir(path.join(harness.config.dataDir, 'store'), { recursive: true });
    await rm(harness.config.dataDir, { recursive: true, force: true });
    const bytes = randomBytes(700);
    const digest = sha256(bytes);
    for (const gateway of [client, secondClient]) {
      const response = await gateway.fetch(gateway.url('blob-upload', { name: 'coherent/fresh' }, { digest }), { method: 'POST', body: bytes as BodyInit });
      expect(response.status).toBe(201);
    }
    expect((await stat(blobFile(digest))).size).toBe(bytes.length);
  });
});

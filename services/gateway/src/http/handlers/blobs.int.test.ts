import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OciTestClient,
  createTestDatabase,
  errorCodes,
  sha256,
  startGatewayProcess,
  type GatewayProcess,
  type TestDatabase,
} from '@meridian/testkit';
import { startTestGateway, type TestGateway } from '../../testing/test-gateway.js';

/**
 * distribution-spec v1.1 "Pulling blobs" and "Deleting blobs" over real HTTP, against an
 * in-process gateway on its own database and data directory.
 */
let harness: TestGateway;
let client: OciTestClient;

beforeAll(async () => {
  harness = await startTestGateway();
  client = harness.client;
});
afterAll(async () => harness?.close());

const TEN_BYTES = Buffer.from('0123456789');
const EMPTY_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function blobUrl(name: string, digest: string): string {
  return client.url('blob', { name, digest });
}

async function getRange(name: string, digest: string, range: string): Promise<Response> {
  return client.fetch(blobUrl(name, digest), { headers: { Range: range } });
}

describe('pulling blobs', () => {
  it('HEAD and GET of a pushed blob answer 200 with its size, digest and exact bytes ("Pulling blobs")', async () => {
    const bytes = randomBytes(4096);
    const digest = await client.pushBlob('pull/plain', bytes);

    const head = await client.fetch(blobUrl('pull/plain', digest), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    expect(head.headers.get('docker-content-digest')).toBe(digest);
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    expect(head.headers.get('content-type')).toBe('application/octet-stream');
    expect((await head.arrayBuffer()).byteLength).toBe(0);

    const get = await client.fetch(blobUrl('pull/plain', digest));
    expect(get.status).toBe(200);
    expect(get.headers.get('content-length')).toBe(String(bytes.length));
    expect(get.headers.get('docker-content-digest')).toBe(digest);
    expect(get.headers.get('accept-ranges')).toBe('bytes');
    expect(get.headers.get('content-range')).toBeNull();
    expect(Buffer.from(await get.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('GET with a satisfiable Range answers 206 with Content-Range and just those bytes ("Pulling blobs", RFC 9110 §14)', async () => {
    const digest = await client.pushBlob('pull/range', TEN_BYTES);
    const cases: Array<[range: string, contentRange: string, body: string]> = [
      ['bytes=0-3', 'bytes 0-3/10', '0123'],
      ['bytes=5-', 'bytes 5-9/10', '56789'],
      ['bytes=-4', 'bytes 6-9/10', '6789'],
      ['bytes=9-9', 'bytes 9-9/10', '9'],
      // An end past the last byte is cut to it; a suffix longer than the blob is the whole blob.
      ['bytes=8-100', 'bytes 8-9/10', '89'],
      ['bytes=-50', 'bytes 0-9/10', '0123456789'],
    ];
    for (const [range, contentRange, body] of cases) {
      const response = await getRange('pull/range', digest, range);
      expect(response.status, range).toBe(206);
      expect(response.headers.get('content-range'), range).toBe(contentRange);
      expect(response.headers.get('content-length'), range).toBe(String(body.length));
      expect(response.headers.get('docker-content-digest'), range).toBe(digest);
      expect(response.headers.get('accept-ranges'), range).toBe('bytes');
      expect(await response.text(), range).toBe(body);
    }
  });

  it('an unsatisfiable or malformed Range answers 416 with Content-Range: bytes */size ("Pulling blobs", RFC 9110 §15.5.17)', async () => {
    const digest = await client.pushBlob('pull/range416', TEN_BYTES);
    for (const range of ['bytes=100-200', 'bytes=10-', 'bytes=5-2', 'bytes=-0', 'bytes=abc', 'bytes=-']) {
      const response = await getRange('pull/range416', digest, range);
      expect(response.status, range).toBe(416);
      expect(response.headers.get('content-range'), range).toBe('bytes */10');
      expect((await errorCodes(response)).length, range).toBe(1);
    }
  });

  it('a Range in a unit other than bytes is ignored: the whole blob, 200 (RFC 9110 §14.2)', async () => {
    const digest = await client.pushBlob('pull/range-unit', TEN_BYTES);
    const response = await getRange('pull/range-unit', digest, 'items=0-3');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-range')).toBeNull();
    expect(Buffer.from(await response.arrayBuffer()).equals(TEN_BYTES)).toBe(true);
  });

  it('a blob the repository does not hold is 404 BLOB_UNKNOWN, for GET and HEAD ("Pulling blobs", "Error codes")', async () => {
    await client.pushBlob('pull/known', Buffer.from('something'));
    const missing = sha256(randomBytes(16));
    const get = await client.fetch(blobUrl('pull/known', missing));
    expect(get.status).toBe(404);
    expect(await errorCodes(get)).toEqual(['BLOB_UNKNOWN']);
    const head = await client.fetch(blobUrl('pull/known', missing), { method: 'HEAD' });
    expect(head.status).toBe(404);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('a blob whose bytes are gone from the store is a plain 404 BLOB_UNKNOWN, without the 206 headers it was about to send ("Error codes")', async () => {
    const bytes = randomBytes(64);
    const digest = await client.pushBlob('pull/lost', bytes);
    const hex = digest.slice('sha256:'.length);
    await rm(path.join(harness.config.dataDir, 'store', 'blobs', 'sha256', hex.slice(0, 2), hex));
    const get = await getRange('pull/lost', digest, 'bytes=0-9');
    expect(get.status).toBe(404);
    expect(await errorCodes(get)).toEqual(['BLOB_UNKNOWN']);
    expect(get.headers.get('content-type')).toBe('application/json');
    for (const name of ['content-range', 'docker-content-digest', 'accept-ranges']) expect(get.headers.get(name), name).toBeNull();
    expect(get.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('a repository that does not exist is 404 NAME_UNKNOWN ("Pulling blobs", "Error codes")', async () => {
    const digest = await client.pushBlob('pull/exists', Buffer.from('exists'));
    const get = await client.fetch(blobUrl('pull/never-pushed', digest));
    expect(get.status).toBe(404);
    expect(await errorCodes(get)).toEqual(['NAME_UNKNOWN']);
    const del = await client.fetch(blobUrl('pull/never-pushed', digest), { method: 'DELETE' });
    expect(del.status).toBe(404);
    expect(await errorCodes(del)).toEqual(['NAME_UNKNOWN']);
  });

  it('a blob pushed to one repository is not readable through another that exists: repositories are isolated ("Pulling blobs")', async () => {
    const secret = randomBytes(64);
    const digest = await client.pushBlob('tenant-a/app', secret);
    await client.pushBlob('tenant-b/app', Buffer.from('tenant b has its own blobs'));

    const get = await client.fetch(blobUrl('tenant-b/app', digest));
    expect(get.status).toBe(404);
    expect(await errorCodes(get)).toEqual(['BLOB_UNKNOWN']);
    const head = await client.fetch(blobUrl('tenant-b/app', digest), { method: 'HEAD' });
    expect(head.status).toBe(404);
    const ranged = await getRange('tenant-b/app', digest, 'bytes=0-3');
    expect(ranged.status).toBe(404);
    expect(await errorCodes(ranged)).toEqual(['BLOB_UNKNOWN']);
    // Nor may B delete A's link.
    const del = await client.fetch(blobUrl('tenant-b/app', digest), { method: 'DELETE' });
    expect(del.status).toBe(404);
    expect(await errorCodes(del)).toEqual(['BLOB_UNKNOWN']);
    expect((await client.fetch(blobUrl('tenant-a/app', digest), { method: 'HEAD' })).status).toBe(200);
  });

  it('a zero-byte blob can be pushed and pulled ("Pushing a blob monolithically", "Pulling blobs")', async () => {
    const digest = await client.pushBlob('pull/empty', Buffer.alloc(0));
    expect(digest).toBe(EMPTY_DIGEST);
    const head = await client.fetch(blobUrl('pull/empty', digest), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('0');
    expect(head.headers.get('docker-content-digest')).toBe(EMPTY_DIGEST);
    const get = await client.fetch(blobUrl('pull/empty', digest));
    expect(get.status).toBe(200);
    expect(get.headers.get('content-length')).toBe('0');
    expect(get.headers.get('docker-content-digest')).toBe(EMPTY_DIGEST);
    expect((await get.arrayBuffer()).byteLength).toBe(0);
  });

  it('an invalid digest in the path is 400 DIGEST_INVALID for GET, HEAD and DELETE ("Pulling blobs", "Error codes")', async () => {
    await client.pushBlob('pull/digests', Buffer.from('x'));
    const invalid = [
      'sha256:zz',
      'md5:d41d8cd98f00b204e9800998ecf8427e',
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'A'.repeat(64)}`,
      `sha512:${'a'.repeat(64)}`,
      'sha256',
    ];
    for (const digest of invalid) {
      for (const method of ['GET', 'DELETE']) {
        const response = await client.fetch(blobUrl('pull/digests', digest), { method });
        expect(response.status, `${method} ${digest}`).toBe(400);
        expect(await errorCodes(response), `${method} ${digest}`).toEqual(['DIGEST_INVALID']);
      }
      const head = await client.fetch(blobUrl('pull/digests', digest), { method: 'HEAD' });
      expect(head.status, `HEAD ${digest}`).toBe(400);
    }
  });
});

describe('deleting blobs', () => {
  it('DELETE answers 202; the blob is then 404 BLOB_UNKNOWN and a second DELETE is 404 ("Deleting blobs")', async () => {
    const bytes = randomBytes(100);
    const digest = await client.pushBlob('del/app', bytes);
    expect((await client.fetch(blobUrl('del/app', digest), { method: 'HEAD' })).status).toBe(200);

    const del = await client.fetch(blobUrl('del/app', digest), { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect(del.headers.get('content-length')).toBe('0');

    const head = await client.fetch(blobUrl('del/app', digest), { method: 'HEAD' });
    expect(head.status).toBe(404);
    const get = await client.fetch(blobUrl('del/app', digest));
    expect(get.status).toBe(404);
    expect(await errorCodes(get)).toEqual(['BLOB_UNKNOWN']);

    const again = await client.fetch(blobUrl('del/app', digest), { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(await errorCodes(again)).toEqual(['BLOB_UNKNOWN']);
  });

  it('deleting a blob from one repository leaves it readable through another that holds it; pushing it again restores it ("Deleting blobs")', async () => {
    const bytes = randomBytes(300);
    const digest = await client.pushBlob('del/one', bytes);
    await client.pushBlob('del/two', bytes);
    expect((await client.fetch(blobUrl('del/one', digest), { method: 'DELETE' })).status).toBe(202);

    expect((await client.fetch(blobUrl('del/one', digest), { method: 'HEAD' })).status).toBe(404);
    const other = await client.fetch(blobUrl('del/two', digest));
    expect(other.status).toBe(200);
    expect(Buffer.from(await other.arrayBuffer()).equals(bytes)).toBe(true);

    await client.pushBlob('del/one', bytes);
    const back = await client.fetch(blobUrl('del/one', digest));
    expect(back.status).toBe(200);
    expect(Buffer.from(await back.arrayBuffer()).equals(bytes)).toBe(true);
  });
});

/**
 * Concurrent pulls run against a gateway PROCESS, not the in-process one: if the gateway crashes
 * under them, the test must fail with what it saw rather than take the test runner down with it.
 */
describe('concurrent pulls', () => {
  let database: TestDatabase | undefined;
  let dataDir: string | undefined;
  let gateway: GatewayProcess | undefined;
  let exit: string | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-test-pulls-'));
    // One process, no supervisor: a crash must end the process for the test to see it, not be
    // hidden by a replacement worker.
    gateway = await startGatewayProcess({ databaseUrl: database.url, dataDir, env: { MERIDIAN_WORKERS: '1' } });
    gateway.child.once('exit', (code, signal) => (exit = `exit code ${code}, signal ${signal}`));
  });
  afterAll(async () => {
    // testkit's stop() waits for an 'exit' that already happened when the process died of a signal.
    if (exit === undefined) await gateway?.stop();
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** A GET on a connection of its own (no keep-alive), so connections are accepted while files close. */
  function pull(url: string): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      http
        .get(url, { agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        })
        .on('error', reject);
    });
  }

  it('many concurrent pulls of different blobs each get their own bytes, and the gateway stays up ("Pulling blobs")', async () => {
    const remote = new OciTestClient(gateway!.url);
    const blobs = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const bytes = randomBytes(32 * 1024 + i);
        return { bytes, digest: await remote.pushBlob('pull/concurrent', bytes) };
      }),
    );
    const failures: string[] = [];
    for (let batch = 0; batch < 60 && exit === undefined; batch++) {
      await Promise.all(
        Array.from({ length: 32 }, async (_, i) => {
          const blob = blobs[(batch * 32 + i) % blobs.length]!;
          try {
            const { status, body } = await pull(remote.url('blob', { name: 'pull/concurrent', digest: blob.digest }));
            const actual = `sha256:${createHash('sha256').update(body).digest('hex')}`;
            if (status !== 200 || actual !== blob.digest) failures.push(`status ${status}, ${body.length} bytes, digest ${actual === blob.digest ? 'ok' : 'WRONG'}`);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }),
      );
    }
    expect(exit, 'the gateway process died').toBeUndefined();
    expect(failures.slice(0, 10), `${failures.length} of the pulls failed`).toEqual([]);
  });

  it('clients that hang up mid-pull leave the gateway up and serving ("Pulling blobs")', async () => {
    const remote = new OciTestClient(gateway!.url);
    const bytes = randomBytes(16 * 1024 * 1024);
    const digest = await remote.pushBlob('pull/hangup', bytes);
    const url = new URL(remote.url('blob', { name: 'pull/hangup', digest }));
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const request = http.get(url, { agent: false }, (res) => {
          // Take a little, then hang up while the gateway still has megabytes to send.
          res.once('data', () => {
            request.destroy();
            resolve();
          });
        });
        request.on('error', () => resolve());
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(exit, 'the gateway process died').toBeUndefined();
    const { status, body } = await pull(url.toString());
    expect(status).toBe(200);
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(digest);
  });
});

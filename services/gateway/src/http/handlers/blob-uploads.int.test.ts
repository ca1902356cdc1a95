import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { OciTestClient, createTestDatabase, errorCodes, sha256, type TestDatabase } from '@meridian/testkit';
import { createApp, type Gateway } from '../../app.js';
import { loadConfig } from '../../config.js';
import { startTestGateway, type TestGateway } from '../../testing/test-gateway.js';

/**
 * distribution-spec v1.1 "Pushing blobs": monolithic POST, POST then PUT, chunked
 * POST/PATCH…/PUT, status, cancel, cross-repository mount, and the HMAC-signed upload state,
 * over real HTTP against an in-process gateway on its own database and data directory.
 */
let harness: TestGateway;
let client: OciTestClient;

beforeAll(async () => {
  harness = await startTestGateway();
  client = harness.client;
});
afterAll(async () => harness?.close());

const OCTET = 'application/octet-stream';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Session {
  /** The Location as the gateway sent it (relative, carrying `_state`). */
  location: string;
  id: string;
}

/** The Location with extra query parameters, keeping the ones it carries (`_state`). */
function withQuery(location: string, query: Record<string, string>): string {
  const url = new URL(location, client.baseUrl);
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
  return `${url.pathname}${url.search}`;
}

function sessionOf(response: Response): Session {
  const location = response.headers.get('location');
  const id = response.headers.get('docker-upload-uuid');
  if (!location || !id) throw new Error(`no upload session in the response (${response.status})`);
  return { location, id };
}

/** POST without a digest: a new session (distribution-spec "Pushing blobs", step one). */
async function startUpload(name: string, c: OciTestClient = client): Promise<Session> {
  const response = await c.fetch(c.url('blob-upload', { name }), { method: 'POST' });
  expect(response.status).toBe(202);
  return sessionOf(response);
}

async function patch(c: OciTestClient, session: Session, chunk: Buffer, range?: string): Promise<Response> {
  return c.fetch(session.location, {
    method: 'PATCH',
    headers: { 'Content-Type': OCTET, ...(range ? { 'Content-Range': range } : {}) },
    body: chunk as BodyInit,
  });
}

/** A PATCH whose body is streamed (chunked transfer encoding, no Content-Length). */
async function patchStreamed(c: OciTestClient, session: Session, pieces: Buffer[]): Promise<Response> {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      controller.close();
    },
  });
  return c.fetch(session.location, { method: 'PATCH', headers: { 'Content-Type': OCTET }, body });
}

async function status(c: OciTestClient, session: Session): Promise<Response> {
  return c.fetch(session.location);
}

async function blobBytes(name: string, digest: string, c: OciTestClient = client): Promise<Buffer | undefined> {
  const response = await c.fetch(c.url('blob', { name, digest }));
  if (response.status !== 200) return undefined;
  return Buffer.from(await response.arrayBuffer());
}

function expectCreated(response: Response, name: string, digest: string): void {
  expect(response.status).toBe(201);
  expect(response.headers.get('location')).toBe(`/v2/${name}/blobs/${digest}`);
  expect(response.headers.get('docker-content-digest')).toBe(digest);
}

describe('pushing a blob monolithically', () => {
  it('POST ?digest= with the bytes answers 201 with Location and Docker-Content-Digest ("Pushing a blob monolithically", single POST)', async () => {
    const bytes = randomBytes(2048);
    const digest = sha256(bytes);
    const response = await client.fetch(client.url('blob-upload', { name: 'mono/post' }, { digest }), {
      method: 'POST',
      headers: { 'Content-Type': OCTET },
      body: bytes as BodyInit,
    });
    expectCreated(response, 'mono/post', digest);
    expect((await blobBytes('mono/post', digest))?.equals(bytes)).toBe(true);
  });

  it('POST ?digest= whose bytes hash to something else is 400 DIGEST_INVALID and stores nothing ("Pushing a blob monolithically", "Error codes")', async () => {
    const bytes = randomBytes(512);
    const claimed = sha256(randomBytes(512));
    const response = await client.fetch(client.url('blob-upload', { name: 'mono/wrong' }, { digest: claimed }), {
      method: 'POST',
      headers: { 'Content-Type': OCTET },
      body: bytes as BodyInit,
    });
    expect(response.status).toBe(400);
    expect(await errorCodes(response)).toEqual(['DIGEST_INVALID']);
    for (const digest of [claimed, sha256(bytes)]) {
      expect((await client.fetch(client.url('blob', { name: 'mono/wrong', digest }), { method: 'HEAD' })).status).toBe(404);
    }
  });

  it('POST then PUT ?digest= with the whole body answers 201 ("Pushing a blob monolithically", POST then PUT)', async () => {
    const bytes = randomBytes(3000);
    const digest = sha256(bytes);
    const session = await startUpload('mono/postput');
    expect(session.id).toMatch(UUID);
    const put = await client.fetch(withQuery(session.location, { digest }), {
      method: 'PUT',
      headers: { 'Content-Type': OCTET },
      body: bytes as BodyInit,
    });
    expectCreated(put, 'mono/postput', digest);
    expect((await blobBytes('mono/postput', digest))?.equals(bytes)).toBe(true);
    // The session is closed: it is not there to continue.
    const after = await status(client, session);
    expect(after.status).toBe(404);
    expect(await errorCodes(after)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
  });

  it('the Location a POST returns is usable as-is: it carries the signed `_state` ("Pushing blobs", obtaining a session)', async () => {
    const response = await client.fetch(client.url('blob-upload', { name: 'mono/location' }), { method: 'POST' });
    expect(response.status).toBe(202);
    const location = response.headers.get('location')!;
    const id = response.headers.get('docker-upload-uuid')!;
    expect(location).toMatch(new RegExp(`^/v2/mono/location/blobs/uploads/${id}\\?_state=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$`));
    expect(response.headers.get('range')).toBe('0-0');
    // Used verbatim, with nothing added: a status request.
    const get = await client.fetch(location);
    expect(get.status).toBe(204);
    expect(get.headers.get('docker-upload-uuid')).toBe(id);
    // And verbatim plus `&digest=` to close it.
    const put = await client.fetch(`${location}&digest=${sha256('')}`, { method: 'PUT' });
    expectCreated(put, 'mono/location', sha256(''));
  });
});

describe('pushing a blob in chunks', () => {
  it('POST, PATCH, PATCH, status, PUT without a body: 201, and the blob is the chunks concatenated ("Pushing a blob in chunks")', async () => {
    const first = randomBytes(1000);
    const second = randomBytes(1500);
    const whole = Buffer.concat([first, second]);
    const digest = sha256(whole);
    const session = await startUpload('chunked/app');

    const one = await patch(client, session, first, `0-${first.length - 1}`);
    expect(one.status).toBe(202);
    expect(one.headers.get('range')).toBe('0-999');
    expect(one.headers.get('docker-upload-uuid')).toBe(session.id);
    expect(one.headers.get('location')).toContain(`/v2/chunked/app/blobs/uploads/${session.id}?_state=`);

    // The next chunk goes to the Location the last response gave.
    const next = { ...session, location: one.headers.get('location')! };
    const two = await patch(client, next, second, `1000-${whole.length - 1}`);
    expect(two.status).toBe(202);
    expect(two.headers.get('range')).toBe(`0-${whole.length - 1}`);

    const progress = await status(client, next);
    expect(progress.status).toBe(204);
    expect(progress.headers.get('range')).toBe(`0-${whole.length - 1}`);
    expect(progress.headers.get('docker-upload-uuid')).toBe(session.id);
    expect(progress.headers.get('location')).toContain(`/v2/chunked/app/blobs/uploads/${session.id}?_state=`);

    // Clients that send the RFC 9110 form `bytes <start>-<end>/<total|*>` are understood too.
    const third = randomBytes(10);
    const rfc = await patch(client, next, third, `bytes ${whole.length}-${whole.length + 9}/*`);
    expect(rfc.status).toBe(202);
    expect(rfc.headers.get('range')).toBe(`0-${whole.length + 9}`);
    const all = Buffer.concat([whole, third]);

    const put = await client.fetch(withQuery(next.location, { digest: sha256(all) }), { method: 'PUT' });
    expectCreated(put, 'chunked/app', sha256(all));
    expect((await blobBytes('chunked/app', sha256(all)))?.equals(all)).toBe(true);
  });

  it('a session that got its bytes in one PATCH closes with a body-less PUT ("Pushing a blob in chunks")', async () => {
    const whole = randomBytes(2500);
    const digest = sha256(whole);
    const session = await startUpload('chunked/app');
    expect((await patch(client, session, whole, `0-${whole.length - 1}`)).status).toBe(202);
    const put = await client.fetch(withQuery(session.location, { digest }), { method: 'PUT' });
    expectCreated(put, 'chunked/app', digest);
    expect((await blobBytes('chunked/app', digest))?.equals(whole)).toBe(true);
    const head = await client.fetch(client.url('blob', { name: 'chunked/app', digest }), { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(whole.length));
  });

  it('a PATCH without Content-Range (a streamed body) appends to the session ("Pushing a blob in chunks", streamed)', async () => {
    const pieces = [randomBytes(700), randomBytes(70_000), randomBytes(7)];
    const tail = randomBytes(333);
    const whole = Buffer.concat([...pieces, tail]);
    const session = await startUpload('chunked/streamed');

    const streamed = await patchStreamed(client, session, pieces);
    expect(streamed.status).toBe(202);
    const streamedSize = pieces.reduce((sum, piece) => sum + piece.length, 0);
    expect(streamed.headers.get('range')).toBe(`0-${streamedSize - 1}`);

    // A plain PATCH with a Content-Length and no Content-Range appends too.
    const more = await patch(client, session, tail);
    expect(more.status).toBe(202);
    expect(more.headers.get('range')).toBe(`0-${whole.length - 1}`);

    const put = await client.fetch(withQuery(session.location, { digest: sha256(whole) }), { method: 'PUT' });
    expectCreated(put, 'chunked/streamed', sha256(whole));
    expect((await blobBytes('chunked/streamed', sha256(whole)))?.equals(whole)).toBe(true);
  });

  it('an out-of-order chunk is 416 BLOB_UPLOAD_INVALID with the Range held, and the session keeps its size ("Pushing a blob in chunks")', async () => {
    const first = randomBytes(100);
    const second = randomBytes(50);
    const session = await startUpload('chunked/order');
    expect((await patch(client, session, first, '0-99')).status).toBe(202);

    for (const range of ['150-199', '101-150', '0-49', '50-99']) {
      const wrong = await patch(client, session, second, range);
      expect(wrong.status, range).toBe(416);
      expect(wrong.headers.get('range'), range).toBe('0-99');
      expect(await errorCodes(wrong), range).toEqual(['BLOB_UPLOAD_INVALID']);
    }
    const held = await status(client, session);
    expect(held.status).toBe(204);
    expect(held.headers.get('range')).toBe('0-99');

    // The right chunk still goes in, and the blob is exactly the two chunks.
    expect((await patch(client, session, second, '100-149')).status).toBe(202);
    const whole = Buffer.concat([first, second]);
    const put = await client.fetch(withQuery(session.location, { digest: sha256(whole) }), { method: 'PUT' });
    expectCreated(put, 'chunked/order', sha256(whole));
    expect((await blobBytes('chunked/order', sha256(whole)))?.equals(whole)).toBe(true);
  });

  it('the closing PUT may carry the last chunk, with or without its Content-Range ("Pushing a blob in chunks", closing the upload)', async () => {
    for (const withRange of [true, false]) {
      const first = randomBytes(4096);
      const last = randomBytes(1234);
      const whole = Buffer.concat([first, last]);
      const digest = sha256(whole);
      const session = await startUpload('chunked/lastput');
      expect((await patch(client, session, first, `0-${first.length - 1}`)).status).toBe(202);
      const put = await client.fetch(withQuery(session.location, { digest }), {
        method: 'PUT',
        headers: { 'Content-Type': OCTET, ...(withRange ? { 'Content-Range': `${first.length}-${whole.length - 1}` } : {}) },
        body: last as BodyInit,
      });
      expectCreated(put, 'chunked/lastput', digest);
      expect((await blobBytes('chunked/lastput', digest))?.equals(whole), `with range: ${withRange}`).toBe(true);
    }
  });

  it('DELETE on the session answers 204; the session is then 404 BLOB_UPLOAD_UNKNOWN ("Pushing blobs", canceling an upload)', async () => {
    const session = await startUpload('chunked/cancel');
    expect((await patch(client, session, randomBytes(10), '0-9')).status).toBe(202);
    const del = await client.fetch(session.location, { method: 'DELETE' });
    expect(del.status).toBe(204);

    const get = await status(client, session);
    expect(get.status).toBe(404);
    expect(await errorCodes(get)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    const more = await patch(client, session, randomBytes(10), '10-19');
    expect(more.status).toBe(404);
    expect(await errorCodes(more)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    const again = await client.fetch(session.location, { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(await errorCodes(again)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
  });

  // A session that never got a chunk has no files; its row alone says it is open.
  it('a session cancelled before any chunk is 404 BLOB_UPLOAD_UNKNOWN to status, PATCH, PUT and DELETE, and links nothing ("Pushing blobs", canceling an upload)', async () => {
    const bytes = randomBytes(500);
    const digest = sha256(bytes);
    const session = await startUpload('empty/cancel');
    const open = await status(client, session);
    expect(open.status).toBe(204);
    expect(open.headers.get('range')).toBe('0-0');
    expect((await client.fetch(session.location, { method: 'DELETE' })).status).toBe(204);

    const put = await client.fetch(withQuery(session.location, { digest }), { method: 'PUT', headers: { 'Content-Type': OCTET }, body: bytes as BodyInit });
    const emptyPut = await client.fetch(withQuery(session.location, { digest }), { method: 'PUT' });
    for (const response of [await status(client, session), await patch(client, session, bytes, '0-499'), put, emptyPut]) {
      expect(response.status).toBe(404);
      expect(await errorCodes(response)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    }
    expect((await client.fetch(session.location, { method: 'DELETE' })).status).toBe(404);
    expect((await client.fetch(client.url('blob', { name: 'empty/cancel', digest }), { method: 'HEAD' })).status).toBe(404);
  });

  it('replaying the PUT of a closed POST-then-PUT session is 404 BLOB_UPLOAD_UNKNOWN ("Pushing blobs")', async () => {
    const bytes = randomBytes(700);
    const digest = sha256(bytes);
    const session = await startUpload('empty/replay');
    const put = () => client.fetch(withQuery(session.location, { digest }), { method: 'PUT', headers: { 'Content-Type': OCTET }, body: bytes as BodyInit });
    expectCreated(await put(), 'empty/replay', digest);
    const replay = await put();
    expect(replay.status).toBe(404);
    expect(await errorCodes(replay)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    expect((await blobBytes('empty/replay', digest))?.equals(bytes)).toBe(true);
  });

  it('a PUT whose digest does not match is 400 DIGEST_INVALID, stores nothing and ends the session ("Pushing a blob in chunks", "Error codes")', async () => {
    const bytes = randomBytes(800);
    const claimed = sha256(randomBytes(800));
    const session = await startUpload('chunked/wrong');
    expect((await patch(client, session, bytes, '0-799')).status).toBe(202);

    const put = await client.fetch(withQuery(session.location, { digest: claimed }), { method: 'PUT' });
    expect(put.status).toBe(400);
    expect(await errorCodes(put)).toEqual(['DIGEST_INVALID']);
    for (const digest of [claimed, sha256(bytes)]) {
      expect((await client.fetch(client.url('blob', { name: 'chunked/wrong', digest }), { method: 'HEAD' })).status).toBe(404);
    }
    const gone = await status(client, session);
    expect(gone.status).toBe(404);
    expect(await errorCodes(gone)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    // And the right digest can no longer close it.
    const late = await client.fetch(withQuery(session.location, { digest: sha256(bytes) }), { method: 'PUT' });
    expect(late.status).toBe(404);
    expect(await errorCodes(late)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
  });

  it('a PUT without a digest, or with a malformed one, is 400 DIGEST_INVALID and leaves the session open ("Pushing a blob in chunks", "Error codes")', async () => {
    const bytes = randomBytes(64);
    const session = await startUpload('chunked/nodigest');
    expect((await patch(client, session, bytes, '0-63')).status).toBe(202);
    for (const location of [session.location, withQuery(session.location, { digest: 'sha256:nothex' }), withQuery(session.location, { digest: '' })]) {
      const put = await client.fetch(location, { method: 'PUT' });
      expect(put.status, location).toBe(400);
      expect(await errorCodes(put), location).toEqual(['DIGEST_INVALID']);
    }
    const open = await status(client, session);
    expect(open.status).toBe(204);
    expect(open.headers.get('range')).toBe('0-63');
    expectCreated(await client.fetch(withQuery(session.location, { digest: sha256(bytes) }), { method: 'PUT' }), 'chunked/nodigest', sha256(bytes));
  });

  it('an upload URL with a tampered or missing `_state`, or used through another repository, is 404 BLOB_UPLOAD_UNKNOWN ("Pushing blobs", "Error codes")', async () => {
    const session = await startUpload('state/mine');
    await startUpload('state/other'); // the other repository exists
    const url = new URL(session.location, client.baseUrl);
    const token = url.searchParams.get('_state')!;
    const [payload, mac] = token.split('.') as [string, string];
    const otherId = sessionOf(await client.fetch(client.url('blob-upload', { name: 'state/mine' }), { method: 'POST' })).id;

    const forged = Buffer.from(JSON.stringify(['state/other', session.id, new Date().toISOString()])).toString('base64url');
    const flipped = `${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`;
    const tampered: Array<[label: string, path: string]> = [
      ['missing _state', url.pathname],
      ['empty _state', `${url.pathname}?_state=`],
      ['mac changed', `${url.pathname}?_state=${payload}.${flipped}`],
      ['payload changed, old mac', `${url.pathname}?_state=${forged}.${mac}`],
      ['no mac', `${url.pathname}?_state=${payload}`],
      ['garbage', `${url.pathname}?_state=not-a-token`],
      ['state of this session, on another session id', `/v2/state/mine/blobs/uploads/${otherId}?_state=${token}`],
      ['through another repository', `/v2/state/other/blobs/uploads/${session.id}?_state=${token}`],
      ['through a repository that does not exist', `/v2/state/nowhere/blobs/uploads/${session.id}?_state=${token}`],
    ];
    for (const [label, path] of tampered) {
      for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
        const init: RequestInit = { method };
        if (method === 'PATCH') Object.assign(init, { headers: { 'Content-Type': OCTET, 'Content-Range': '0-3' }, body: Buffer.from('evil') });
        const target = method === 'PUT' ? `${path}${path.includes('?') ? '&' : '?'}digest=${sha256('')}` : path;
        const response = await client.fetch(target, init);
        expect(response.status, `${method} ${label}`).toBe(404);
        expect(await errorCodes(response), `${method} ${label}`).toEqual(['BLOB_UPLOAD_UNKNOWN']);
      }
    }
    // None of it touched the real session.
    const intact = await status(client, session);
    expect(intact.status).toBe(204);
    expect(intact.headers.get('range')).toBe('0-0');
  });
});

describe('sha512 digests', () => {
  it('a blob may be named by its sha512 digest, pushed monolithically or in chunks, and pulled by it ("Pushing blobs", image-spec registered algorithms)', async () => {
    const bytes = randomBytes(10_000);
    const digest = `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
    const mono = await client.fetch(client.url('blob-upload', { name: 'sha512/mono' }, { digest }), {
      method: 'POST',
      headers: { 'Content-Type': OCTET },
      body: bytes as BodyInit,
    });
    expectCreated(mono, 'sha512/mono', digest);
    expect((await blobBytes('sha512/mono', digest))?.equals(bytes)).toBe(true);

    const session = await startUpload('sha512/chunked');
    expect((await patch(client, session, bytes.subarray(0, 4000), '0-3999')).status).toBe(202);
    expect((await patch(client, session, bytes.subarray(4000), `4000-${bytes.length - 1}`)).status).toBe(202);
    const wrong = `sha512:${createHash('sha512').update(bytes.subarray(1)).digest('hex')}`;
    const other = await startUpload('sha512/chunked');
    expect((await patch(client, other, bytes, `0-${bytes.length - 1}`)).status).toBe(202);
    const bad = await client.fetch(withQuery(other.location, { digest: wrong }), { method: 'PUT' });
    expect(bad.status).toBe(400);
    expect(await errorCodes(bad)).toEqual(['DIGEST_INVALID']);
    const put = await client.fetch(withQuery(session.location, { digest }), { method: 'PUT' });
    expectCreated(put, 'sha512/chunked', digest);
    expect((await blobBytes('sha512/chunked', digest))?.equals(bytes)).toBe(true);
  });
});

describe('mounting a blob from another repository', () => {
  it('POST ?mount=&from= of a blob the source holds answers 201, and the blob is then readable in the target ("Mounting a blob from another repository")', async () => {
    const bytes = randomBytes(2222);
    const digest = await client.pushBlob('mount/source', bytes);
    expect((await client.fetch(client.url('blob', { name: 'mount/target', digest }), { method: 'HEAD' })).status).toBe(404);

    const mount = await client.fetch(client.url('blob-upload', { name: 'mount/target' }, { mount: digest, from: 'mount/source' }), { method: 'POST' });
    expectCreated(mount, 'mount/target', digest);
    expect((await blobBytes('mount/target', digest))?.equals(bytes)).toBe(true);
    // The source keeps it, and deleting it from the target leaves the source alone.
    expect((await client.fetch(client.url('blob', { name: 'mount/target', digest }), { method: 'DELETE' })).status).toBe(202);
    expect((await blobBytes('mount/source', digest))?.equals(bytes)).toBe(true);
  });

  it('a mount the registry cannot do (blob unknown, or not in `from`) answers 202 with an upload session instead ("Mounting a blob from another repository")', async () => {
    const unknown = sha256(randomBytes(32));
    const elsewhere = await client.pushBlob('mount/elsewhere', randomBytes(99));
    await client.pushBlob('mount/empty-source', randomBytes(5));
    const cases: Array<Record<string, string>> = [
      { mount: unknown, from: 'mount/elsewhere' },
      { mount: elsewhere, from: 'mount/empty-source' },
      { mount: elsewhere, from: 'mount/does-not-exist' },
      { mount: elsewhere, from: 'Not_A_Valid/Name' },
    ];
    for (const query of cases) {
      const response = await client.fetch(client.url('blob-upload', { name: 'mount/fallback' }, query), { method: 'POST' });
      expect(response.status, JSON.stringify(query)).toBe(202);
      const session = sessionOf(response);
      expect(session.location).toMatch(/^\/v2\/mount\/fallback\/blobs\/uploads\/[0-9a-f-]{36}\?_state=/);
      expect(session.id).toMatch(UUID);
      // The session works like any other.
      expect((await status(client, session)).status).toBe(204);
    }
    expect((await client.fetch(client.url('blob', { name: 'mount/fallback', digest: elsewhere }), { method: 'HEAD' })).status).toBe(404);
  });

  it('a blob deleted from the only repository that held it cannot be mounted back, with or without `from` ("Mounting a blob from another repository", "Deleting blobs")', async () => {
    const bytes = randomBytes(150);
    const digest = await client.pushBlob('mount/deleted-source', bytes);
    expect((await client.fetch(client.url('blob', { name: 'mount/deleted-source', digest }), { method: 'DELETE' })).status).toBe(202);
    // No repository serves it any more: to clients the registry does not know this blob.
    expect((await client.fetch(client.url('blob', { name: 'mount/deleted-source', digest }), { method: 'HEAD' })).status).toBe(404);

    const queries: Array<Record<string, string>> = [{ mount: digest, from: 'mount/deleted-source' }, { mount: digest }];
    for (const query of queries) {
      const response = await client.fetch(client.url('blob-upload', { name: 'mount/resurrect' }, query), { method: 'POST' });
      expect(response.status, `mount ${JSON.stringify(query)} of a deleted blob`).toBe(202);
    }
    expect((await client.fetch(client.url('blob', { name: 'mount/resurrect', digest }), { method: 'HEAD' })).status).toBe(404);
  });
});

/**
 * The upload state is in the URL, HMAC-signed with the region's shared secret, and the bytes are
 * on disk: a session survives its gateway. The second gateway rebuilds the running sha256 from
 * disk and verifies the state with the secret file the first one created.
 */
describe('an upload across a gateway restart', () => {
  let first: TestGateway | undefined;
  let second: Gateway | undefined;
  let firstClosed = false;

  beforeAll(async () => {
    first = await startTestGateway();
  });
  afterAll(async () => {
    await second?.close();
    if (first && !firstClosed) await first.gateway.close();
    await first?.database.drop();
    if (first) await rm(first.config.dataDir, { recursive: true, force: true });
  });

  it('PATCH, restart the gateway, PATCH and PUT through the new one: 201 with the right digest ("Pushing a blob in chunks")', async () => {
    const one = randomBytes(300_000);
    const two = randomBytes(123_457);
    const three = randomBytes(77);
    const whole = Buffer.concat([one, two, three]);
    const digest = sha256(whole);

    const session = await startUpload('restart/app', first!.client);
    const afterOne = await patch(first!.client, session, one, `0-${one.length - 1}`);
    expect(afterOne.status).toBe(202);

    await first!.gateway.close();
    firstClosed = true;
    second = await createApp(first!.config, pino({ level: 'silent' }));
    const client2 = new OciTestClient(await second.listen());

    const resumed = await status(client2, session);
    expect(resumed.status).toBe(204);
    expect(resumed.headers.get('range')).toBe(`0-${one.length - 1}`);
    expect(resumed.headers.get('docker-upload-uuid')).toBe(session.id);

    const afterTwo = await patch(client2, session, two, `${one.length}-${one.length + two.length - 1}`);
    expect(afterTwo.status).toBe(202);
    expect(afterTwo.headers.get('range')).toBe(`0-${one.length + two.length - 1}`);
    const put = await client2.fetch(withQuery(session.location, { digest }), {
      method: 'PUT',
      headers: { 'Content-Type': OCTET },
      body: three as BodyInit,
    });
    expectCreated(put, 'restart/app', digest);
    expect((await blobBytes('restart/app', digest, client2))?.equals(whole)).toBe(true);
    // The state was verified with the secret the first gateway wrote for the region, not a new one.
    expect((await stat(path.join(first!.config.dataDir, 'upload-secret'))).isFile()).toBe(true);
  });
});

/**
 * The region's upload secret lives in `<dataDir>/upload-secret` when not configured. A gateway
 * that crashed between creating that file and writing it (or lost the write to a power cut)
 * leaves it empty; a gateway starting on it must not sign upload state with an empty key, which
 * anyone can compute: it must refuse to start or make a real secret.
 */
describe('the upload secret file', () => {
  let database: TestDatabase | undefined;
  let dataDir: string | undefined;
  let gateway: Gateway | undefined;

  afterAll(async () => {
    await gateway?.close();
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('an empty upload-secret file does not make `_state` forgeable ("Pushing blobs", upload URLs; CONTRIBUTING.md "Configuration": one secret per region)', async () => {
    database = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-test-secret-'));
    await writeFile(path.join(dataDir, 'upload-secret'), '');
    const config = loadConfig({ PORT: '0', DATABASE_URL: database.url, MERIDIAN_DATA_DIR: dataDir, LOG_LEVEL: 'silent', MERIDIAN_AUTH: 'off' });
    try {
      gateway = await createApp(config, pino({ level: 'silent' }));
    } catch {
      return; // refusing to start on a broken secret is a right answer
    }
    const c = new OciTestClient(await gateway.listen());
    const victim = await startUpload('secret/victim', c);
    await startUpload('secret/attacker', c);

    // A state for the victim's session, claimed for another repository, MACed with the empty key.
    const payload = Buffer.from(JSON.stringify(['secret/attacker', victim.id, new Date().toISOString()])).toString('base64url');
    const forged = `${payload}.${createHmac('sha256', '').update(payload).digest('base64url')}`;
    const response = await c.fetch(`/v2/secret/attacker/blobs/uploads/${victim.id}?_state=${forged}`, {
      method: 'PATCH',
      headers: { 'Content-Type': OCTET, 'Content-Range': '0-4' },
      body: Buffer.from('evil!') as BodyInit,
    });
    expect(response.status, 'a _state MACed with the empty key was accepted').toBe(404);
    expect(await errorCodes(response)).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    const untouched = await status(c, victim);
    expect(untouched.headers.get('range')).toBe('0-0');
  });
});

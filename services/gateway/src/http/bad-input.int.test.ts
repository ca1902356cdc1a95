import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes, sha256, type OciTestClient } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from '../testing/test-gateway.js';

/**
 * Hostile and broken clients: bodies cut short, clients vanishing mid-upload, path tricks in
 * names, digests and upload ids, lying Content-Range headers and uploads racing to one digest.
 * After every scenario the store on disk is walked: every file under blobs/ must hash to its own
 * name (only verified content is ever stored), staging/ must be empty and nothing may exist
 * outside the layout paths.ts documents.
 */
let harness: TestGateway;
let client: OciTestClient;
let storeRoot: string;

beforeAll(async () => {
  harness = await startTestGateway();
  client = harness.client;
  storeRoot = path.join(harness.config.dataDir, 'store');
});
afterAll(async () => harness?.close());
afterEach(async () => {
  await expectStoreConsistent();
});

const OCTET = 'application/octet-stream';
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The store on disk

/** Paths of every file under `root`, relative to it, slash-separated. */
async function walk(root: string, prefix = ''): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(path.join(root, prefix), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const files: string[] = [];
  for (const entry of entries) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...(await walk(root, relative)));
    else files.push(relative);
  }
  return files;
}

async function hashFile(file: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function stagingFiles(): Promise<string[]> {
  return walk(path.join(storeRoot, 'staging'));
}

/** Files of an upload session's folder (relative to it). */
async function uploadFiles(id: string): Promise<string[]> {
  return walk(path.join(storeRoot, 'uploads', id));
}

/**
 * The size of an upload session's bytes under `root` (the store's): `data`, or `data.<holder>`
 * while a request holds the session (paths.ts).
 */
async function sessionFileSize(id: string, root = storeRoot): Promise<number | undefined> {
  const folder = path.join(root, 'uploads', id);
  const name = (await readdir(folder).catch(() => [])).find((entry) => entry === 'data' || entry.startsWith('data.'));
  return name === undefined ? undefined : fileSize(path.join(folder, name));
}

async function fileSize(file: string): Promise<number | undefined> {
  return stat(file).then(
    (info) => info.size,
    () => undefined,
  );
}

/** Digests of the blobs in the store. */
async function storedBlobs(): Promise<string[]> {
  return (await walk(path.join(storeRoot, 'blobs'))).map((file) => {
    const [algorithm, , encoded] = file.split('/');
    return `${algorithm}:${encoded}`;
  });
}

/**
 * The invariant of the store (libs/blobstore/src/paths.ts): blobs/<alg>/<2 hex>/<hex> holding
 * exactly the bytes of that digest, uploads/<uuid>/data (and its sha256 note), and nothing left
 * in staging/ once no request is running. Nothing else in the data directory but the store and the upload secret.
 */
async function expectStoreConsistent(): Promise<void> {
  expect(await eventually(async () => (await stagingFiles()).length === 0), `staging/ still holds ${(await stagingFiles()).join(', ')}`).toBe(true);
  for (const file of await walk(storeRoot)) {
    const parts = file.split('/');
    if (parts[0] === 'blobs') {
      const [, algorithm, prefix, encoded] = parts as [string, string, string, string];
      expect(parts, file).toHaveLength(4);
      expect(['sha256', 'sha512'], file).toContain(algorithm);
      expect(encoded, file).toMatch(algorithm === 'sha256' ? /^[a-f0-9]{64}$/ : /^[a-f0-9]{128}$/);
      expect(prefix, file).toBe(encoded.slice(0, 2));
      expect(await hashFile(path.join(storeRoot, file), algorithm), `${file} does not hold the bytes of its digest`).toBe(encoded);
    } else if (parts[0] === 'uploads') {
      expect(parts, file).toHaveLength(3);
      expect(parts[1], file).toMatch(/^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/);
      // data, and for a session of 1 MiB or more the digest noted after its last chunk.
      expect(['data', 'sha256'], file).toContain(parts[2]);
    } else {
      expect.fail(`unexpected file in the store: ${file}`);
    }
  }
  const top = (await readdir(harness.config.dataDir)).filter((name) => name !== 'upload-secret');
  expect(top).toEqual(['store']);
  for (const name of await readdir(storeRoot)) expect(['blobs', 'uploads', 'staging']).toContain(name);
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for what fetch would not send

function gatewayAddress(): { host: string; port: number } {
  const url = new URL(harness.url);
  return { host: url.hostname, port: Number(url.port) };
}

interface RawConnection {
  socket: net.Socket;
  /** Everything the server sent, once the connection has closed. */
  closed: Promise<string>;
  write(data: string | Buffer): Promise<void>;
}

async function rawConnect(): Promise<RawConnection> {
  const { host, port } = gatewayAddress();
  const socket = net.connect(port, host);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const closed = new Promise<string>((resolve) => {
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(received));
  });
  // Never leave a test hanging on a server that keeps the connection open.
  const guard = setTimeout(() => socket.destroy(), 15_000);
  void closed.then(() => clearTimeout(guard));
  return {
    socket,
    closed,
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        socket.write(data, (err) => (err ? reject(err) : resolve()));
      }),
  };
}

function requestHead(method: string, target: string, headers: Record<string, string | number>): string {
  const { host, port } = gatewayAddress();
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${host}:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** A request with a raw (unnormalised) path, as a hostile client sends it. */
function rawRequest(method: string, target: string, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const { host, port } = gatewayAddress();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method, path: target, agent: false, headers: body ? { 'Content-Type': OCTET, 'Content-Length': body.length } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * A raw connection used as Python's http.client and many scripts use one: each request is
 * written whole, head and body, before anything of its answer is read. Answers are then read one
 * at a time (by Content-Length), so the connection can carry the next request.
 */
async function writeFirstConnect(): Promise<{
  socket: net.Socket;
  write(data: string | Buffer): Promise<void>;
  readAnswer(): Promise<Answer>;
  /** Resolves with how the server ended the connection: `end` for its FIN, or the error. */
  ended: Promise<string>;
}> {
  const { host, port } = gatewayAddress();
  const socket = net.connect(port, host);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const ended = new Promise<string>((resolve) => {
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.once('end', () => resolve('end'));
  });
  const guard = setTimeout(() => socket.destroy(), 15_000);
  socket.once('close', () => clearTimeout(guard));
  let unread = Buffer.alloc(0);
  return {
    socket,
    ended,
    write: (data) => new Promise<void>((resolve, reject) => socket.write(data, (err) => (err ? reject(err) : resolve()))),
    readAnswer: () =>
      new Promise<Answer>((resolve, reject) => {
        const parse = () => {
          const headEnd = unread.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const [statusLine, ...lines] = unread.subarray(0, headEnd).toString('latin1').split('\r\n');
          const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
          const length = Number(headers['content-length'] ?? 0);
          if (unread.length < headEnd + 4 + length) return;
          const body = unread.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8');
          unread = unread.subarray(headEnd + 4 + length);
          socket.off('data', onData).off('close', onClose).pause();
          resolve({ status: Number(statusLine!.split(' ')[1]), headers, body });
        };
        const onData = (chunk: Buffer) => {
          unread = Buffer.concat([unread, chunk]);
          parse();
        };
        const onClose = () => reject(new Error(`connection closed before a whole answer: ${unread.toString('latin1').slice(0, 200)}`));
        socket.on('data', onData).once('close', onClose).resume();
        parse();
      }),
  };
}

function codesOf(text: string): string[] {
  return (JSON.parse(text) as { errors: Array<{ code: string }> }).errors.map((e) => e.code);
}

// ---------------------------------------------------------------------------------------------
// Upload helpers

interface Session {
  location: string;
  id: string;
}

async function startUpload(name: string): Promise<Session> {
  const response = await client.fetch(client.url('blob-upload', { name }), { method: 'POST' });
  expect(response.status).toBe(202);
  return { location: response.headers.get('location')!, id: response.headers.get('docker-upload-uuid')! };
}

async function patch(session: Session, chunk: Buffer, range?: string): Promise<Response> {
  return client.fetch(session.location, {
    method: 'PATCH',
    headers: { 'Content-Type': OCTET, ...(range ? { 'Content-Range': range } : {}) },
    body: chunk as BodyInit,
  });
}

/** The session's size as GET status reports it (Range is the last byte held, inclusive). */
async function sessionSize(session: Session): Promise<number> {
  const response = await client.fetch(session.location);
  expect(response.status).toBe(204);
  const range = response.headers.get('range')!;
  const end = Number(/^0-(\d+)$/.exec(range)?.[1]);
  // "0-0" is both an empty session and one byte; the file tells them apart.
  return end === 0 ? ((await sessionFileSize(session.id)) ?? 0) : end + 1;
}

function withDigest(location: string, digest: string): string {
  return `${location}&digest=${digest}`;
}

async function expectBlobAbsent(name: string, digest: string): Promise<void> {
  const head = await client.fetch(client.url('blob', { name, digest }), { method: 'HEAD' });
  expect(head.status, `${digest} in ${name}`).toBe(404);
  expect(await storedBlobs()).not.toContain(digest);
}

/** Writes `total` bytes as chunked transfer encoding, in pieces, honouring back-pressure. */
async function writeChunked(connection: RawConnection, total: number, piece = 64 * 1024): Promise<Buffer> {
  const hash = createHash('sha256');
  let sent = 0;
  while (sent < total) {
    const bytes = randomBytes(Math.min(piece, total - sent));
    hash.update(bytes);
    await connection.write(Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]));
    sent += bytes.length;
  }
  return hash.digest();
}

// ---------------------------------------------------------------------------------------------

describe('bodies cut short', () => {
  it('a monolithic POST ?digest= whose body stops at 2 of 3 declared MiB stores nothing and leaves no staging file ("Pushing a blob monolithically")', async () => {
    // Whole MiB, so that the bytes reach the staging file whichever way the gateway writes
    // (fs-writer.ts: a direct writer gathers 1 MiB before each write).
    const intended = randomBytes(3 * MiB);
    const sent = intended.subarray(0, 2 * MiB);
    // The digest of the bytes meant to come, and one that matches neither them nor what came.
    for (const digest of [sha256(intended), sha256(randomBytes(8))]) {
      const connection = await rawConnect();
      await connection.write(
        requestHead('POST', `/v2/cut/mono/blobs/uploads/?digest=${digest}`, { 'Content-Type': OCTET, 'Content-Length': intended.length }),
      );
      await connection.write(sent);
      // The gateway is mid-write: the bytes sent are in a staging file.
      expect(await eventually(async () => (await stagingFiles()).length === 1)).toBe(true);
      expect(await eventually(async () => (await fileSize(path.join(storeRoot, 'staging', (await stagingFiles())[0] ?? 'none'))) === sent.length)).toBe(true);
      connection.socket.end();
      await connection.closed;

      expect(await eventually(async () => (await stagingFiles()).length === 0), 'the staging file is removed').toBe(true);
      await expectBlobAbsent('cut/mono', digest);
      await expectBlobAbsent('cut/mono', sha256(sent));
    }
  });

  it('a PATCH whose body stops at 2 of 3 declared MiB leaves the session at its size, and it can go on ("Pushing a blob in chunks")', async () => {
    const first = randomBytes(100);
    const session = await startUpload('cut/chunked');
    expect((await patch(session, first, '0-99')).status).toBe(202);

    const attempts: Array<Record<string, string | number>> = [
      { 'Content-Type': OCTET, 'Content-Length': 3 * MiB, 'Content-Range': `100-${100 + 3 * MiB - 1}` },
      { 'Content-Type': OCTET, 'Content-Length': 3 * MiB },
    ];
    for (const headers of attempts) {
      const connection = await rawConnect();
      await connection.write(requestHead('PATCH', session.location, headers));
      await connection.write(randomBytes(2 * MiB));
      // A gateway writing directly holds the last partial slice in memory (fs-writer.ts), so
      // how much is on disk depends on the write path; that some is, does not.
      expect(await eventually(async () => ((await sessionFileSize(session.id)) ?? 0) > 100), 'the chunk reaches the session file').toBe(true);
      connection.socket.end();
      await connection.closed;

      expect(await eventually(async () => (await sessionFileSize(session.id)) === 100), 'the partial chunk is cut off again').toBe(true);
      expect(await sessionSize(session)).toBe(100);
      // The writer's session lock goes a moment after the cut; then only the data file is left.
      expect(await eventually(async () => (await uploadFiles(session.id)).join() === 'data'), 'only the session file is left').toBe(true);
    }

    // The session's running hash was not polluted by the lost bytes.
    const second = randomBytes(900);
    expect((await patch(session, second, '100-999')).status).toBe(202);
    const whole = Buffer.concat([first, second]);
    const put = await client.fetch(withDigest(session.location, sha256(whole)), { method: 'PUT' });
    expect(put.status).toBe(201);
    const get = await client.fetch(client.url('blob', { name: 'cut/chunked', digest: sha256(whole) }));
    expect(Buffer.from(await get.arrayBuffer()).equals(whole)).toBe(true);
    expect(await uploadFiles(session.id)).toEqual([]);
  });

  it('a closing PUT whose last chunk stops at 2 of 3 declared MiB stores nothing and leaves the session as it was ("Pushing a blob in chunks")', async () => {
    const first = randomBytes(200);
    const last = randomBytes(3 * MiB);
    const whole = Buffer.concat([first, last]);
    const session = await startUpload('cut/put');
    expect((await patch(session, first, '0-199')).status).toBe(202);

    const connection = await rawConnect();
    await connection.write(requestHead('PUT', withDigest(session.location, sha256(whole)), { 'Content-Type': OCTET, 'Content-Length': last.length, 'Content-Range': `200-${200 + last.length - 1}` }));
    await connection.write(last.subarray(0, 2 * MiB));
    expect(await eventually(async () => ((await sessionFileSize(session.id)) ?? 0) > 200), 'the last chunk reaches the session file').toBe(true);
    connection.socket.end();
    await connection.closed;

    expect(await eventually(async () => (await sessionFileSize(session.id)) === 200), 'the partial chunk is cut off again').toBe(true);
    expect(await sessionSize(session)).toBe(200);
    await expectBlobAbsent('cut/put', sha256(whole));

    // The same PUT, whole this time, closes it.
    const put = await client.fetch(withDigest(session.location, sha256(whole)), {
      method: 'PUT',
      headers: { 'Content-Type': OCTET, 'Content-Range': `200-${200 + last.length - 1}` },
      body: last as BodyInit,
    });
    expect(put.status).toBe(201);
    const get = await client.fetch(client.url('blob', { name: 'cut/put', digest: sha256(whole) }));
    expect(Buffer.from(await get.arrayBuffer()).equals(whole)).toBe(true);
  });

  it('a client that vanishes half-way through a 5 MiB chunked monolithic POST leaves nothing behind ("Pushing a blob monolithically")', async () => {
    const digest = sha256(randomBytes(16)); // what the whole body would have been is unknowable here
    const connection = await rawConnect();
    await connection.write(requestHead('POST', `/v2/cut/vanish/blobs/uploads/?digest=${digest}`, { 'Content-Type': OCTET, 'Transfer-Encoding': 'chunked' }));
    await writeChunked(connection, 5 * MiB);
    // All of it reached the gateway's staging file; then the client is gone, without the last chunk.
    expect(
      await eventually(async () => {
        const [file] = await stagingFiles();
        return file !== undefined && (await fileSize(path.join(storeRoot, 'staging', file))) === 5 * MiB;
      }, 15_000),
    ).toBe(true);
    connection.socket.destroy();
    await connection.closed;

    expect(await eventually(async () => (await stagingFiles()).length === 0), 'the staging file is removed').toBe(true);
    await expectBlobAbsent('cut/vanish', digest);
  });

  it('a client that vanishes half-way through a 5 MiB streamed PATCH leaves the session as it was ("Pushing a blob in chunks")', async () => {
    const first = randomBytes(4096);
    const session = await startUpload('cut/vanish-chunked');
    expect((await patch(session, first, '0-4095')).status).toBe(202);

    const connection = await rawConnect();
    await connection.write(requestHead('PATCH', session.location, { 'Content-Type': OCTET, 'Transfer-Encoding': 'chunked' }));
    await writeChunked(connection, 5 * MiB);
    expect(await eventually(async () => (await sessionFileSize(session.id)) === 4096 + 5 * MiB, 15_000), 'the body reaches the session file').toBe(true);
    connection.socket.destroy();
    await connection.closed;

    expect(await eventually(async () => (await sessionFileSize(session.id)) === 4096), 'the partial chunk is cut off again').toBe(true);
    expect(await sessionSize(session)).toBe(4096);
    expect(await eventually(async () => (await uploadFiles(session.id)).join() === 'data'), 'only the session file is left').toBe(true);

    const put = await client.fetch(withDigest(session.location, sha256(first)), { method: 'PUT' });
    expect(put.status).toBe(201);
    expect(await uploadFiles(session.id)).toEqual([]);
  });
});

describe('stalled clients', () => {
  it('a PATCH whose client stops sending is cut after MERIDIAN_IDLE_TIMEOUT_SECONDS; its partial chunk is undone and the session goes on ("Pushing a blob in chunks")', async () => {
    const stalling = await startTestGateway({ MERIDIAN_IDLE_TIMEOUT_SECONDS: '1' });
    try {
      const start = await stalling.client.fetch(stalling.client.url('blob-upload', { name: 'stall/patch' }), { method: 'POST' });
      const location = start.headers.get('location')!;
      const id = start.headers.get('docker-upload-uuid')!;
      const dataFile = () => sessionFileSize(id, path.join(stalling.config.dataDir, 'store'));
      const socket = net.connect(Number(new URL(stalling.url).port), '127.0.0.1');
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      socket.write(requestHead('PATCH', location, { 'Content-Type': OCTET, 'Content-Length': 3 * MiB }));
      socket.write(randomBytes(2 * MiB));
      // Whole MiB, so that part of the chunk is on disk whichever way the gateway writes.
      expect(await eventually(async () => ((await dataFile()) ?? 0) > 0), 'the chunk reaches the session file').toBe(true);
      // Then nothing more: the gateway, not the client, has to end this.
      await closed;
      expect(await eventually(async () => (await dataFile()) === undefined), 'the partial first chunk is removed').toBe(true);
      const rest = randomBytes(10);
      const next = await stalling.client.fetch(location, { method: 'PATCH', headers: { 'Content-Type': OCTET }, body: rest as BodyInit });
      expect(next.status).toBe(202);
      expect(next.headers.get('range')).toBe('0-9');
    } finally {
      await stalling.close();
    }
  });
});

describe('path tricks', () => {
  it('`..` and `%2F` in repository names are 400 NAME_INVALID (or 404 when no route matches) and create nothing ("Error codes", NAME_INVALID)', async () => {
    const body = randomBytes(10);
    const cases: Array<[method: string, target: string, body?: Buffer]> = [
      ['POST', '/v2/../../etc/blobs/uploads/'],
      ['POST', `/v2/../../etc/blobs/uploads/?digest=${sha256(body)}`, body],
      ['POST', '/v2/a/../../etc/blobs/uploads/'],
      ['POST', '/v2/..%2F..%2Fetc/blobs/uploads/'],
      ['POST', '/v2/%2e%2e/%2e%2e/etc/blobs/uploads/'],
      ['GET', '/v2/a%2Fb/manifests/latest'],
      ['PUT', '/v2/a%2F..%2F..%2Fetc/manifests/latest', Buffer.from('{}')],
      ['GET', '/v2/a/..%2F..%2Fetc/tags/list'],
      ['GET', '/v2/a/../etc/tags/list'],
      ['GET', `/v2/../blobs/${sha256(body)}`],
      ['DELETE', `/v2/a/%2e%2e/blobs/${sha256(body)}`],
      ['GET', '/v2/a\\..\\etc/tags/list'],
      ['GET', '/v2/./a/tags/list'],
    ];
    for (const [method, target, payload] of cases) {
      const response = await rawRequest(method, target, payload);
      expect([400, 404], `${method} ${target}: ${response.status}`).toContain(response.status);
      if (response.status === 400) expect(codesOf(response.text), `${method} ${target}`).toEqual(['NAME_INVALID']);
    }
    // The three named in the brief answer NAME_INVALID exactly.
    for (const [method, target] of [
      ['POST', '/v2/../../etc/blobs/uploads/'],
      ['GET', '/v2/a%2Fb/manifests/latest'],
      ['GET', '/v2/a/..%2F..%2Fetc/tags/list'],
    ] as const) {
      const response = await rawRequest(method, target);
      expect(response.status, target).toBe(400);
      expect(codesOf(response.text), target).toEqual(['NAME_INVALID']);
    }

    const catalog = (await (await client.fetch('/v2/_catalog')).json()) as { repositories: string[] };
    for (const name of catalog.repositories) expect(name).toMatch(/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/);
    expect(await walk(storeRoot)).not.toContainEqual(expect.stringContaining('etc'));
    expect(existsSync(path.join(harness.config.dataDir, '..', 'etc'))).toBe(false);
  });

  it('path tricks in digests and upload ids are DIGEST_INVALID / BLOB_UPLOAD_UNKNOWN and reach no file ("Error codes")', async () => {
    const bytes = randomBytes(10);
    await client.pushBlob('tricks/app', bytes);
    const session = await startUpload('tricks/app');
    const token = new URL(session.location, client.baseUrl).searchParams.get('_state')!;

    const digestCases: Array<[method: string, target: string, body?: Buffer]> = [
      ['GET', '/v2/tricks/app/blobs/sha256:..%2F..'],
      ['GET', '/v2/tricks/app/blobs/sha256:..%2F..%2F..%2Fupload-secret'],
      ['HEAD', '/v2/tricks/app/blobs/sha256:%2e%2e'],
      ['DELETE', '/v2/tricks/app/blobs/sha256:..%2F..%2Fuploads'],
      ['POST', '/v2/tricks/app/blobs/uploads/?digest=sha256:..%2F..%2Fetc', bytes],
      ['POST', `/v2/tricks/app/blobs/uploads/?digest=sha256:${'a'.repeat(62)}%2F..`, bytes],
      ['PUT', `${session.location}&digest=sha256:..%2F..%2Fblobs`],
    ];
    for (const [method, target, body] of digestCases) {
      const response = await rawRequest(method, target, body);
      expect(response.status, `${method} ${target}`).toBe(400);
      if (method !== 'HEAD') expect(codesOf(response.text), `${method} ${target}`).toEqual(['DIGEST_INVALID']);
    }

    // A mount of a digest that cannot exist is "unable to mount": a plain session (202), and
    // nothing but that session's own file appears ("Mounting a blob from another repository").
    const bogusMount = await rawRequest('POST', '/v2/tricks/app/blobs/uploads/?mount=sha256:..%2F..&from=tricks/app');
    expect(bogusMount.status).toBe(202);

    const uploadCases: Array<[method: string, target: string]> = [
      ['GET', `/v2/tricks/app/blobs/uploads/..%2F..%2Fblobs?_state=${token}`],
      ['PATCH', `/v2/tricks/app/blobs/uploads/..%2F${session.id}?_state=${token}`],
      ['DELETE', `/v2/tricks/app/blobs/uploads/%2e%2e?_state=${token}`],
      ['PUT', `/v2/tricks/app/blobs/uploads/..?_state=${token}&digest=${sha256(bytes)}`],
    ];
    for (const [method, target] of uploadCases) {
      const response = await rawRequest(method, target, method === 'PATCH' ? Buffer.from('x') : undefined);
      expect(response.status, `${method} ${target}`).toBe(404);
      expect(codesOf(response.text), `${method} ${target}`).toEqual(['BLOB_UPLOAD_UNKNOWN']);
    }
    // The session itself is untouched, and so is the secret.
    expect(await sessionSize(session)).toBe(0);
    expect((await stat(path.join(harness.config.dataDir, 'upload-secret'))).size).toBeGreaterThan(0);
  });
});

describe('lying Content-Range', () => {
  it('a chunk shorter or longer than its Content-Range, or a range that ends before it starts, is 416 and changes nothing ("Pushing a blob in chunks")', async () => {
    const first = randomBytes(100);
    const session = await startUpload('lies/range');
    expect((await patch(session, first, '0-99')).status).toBe(202);

    const cases: Array<[range: string, body: Buffer]> = [
      ['100-199', randomBytes(50)], // says 100 bytes, sends 50
      ['100-149', randomBytes(100)], // says 50 bytes, sends 100
      ['110-105', randomBytes(6)], // ends before it starts
      ['10-5', randomBytes(6)],
      ['100-', randomBytes(6)], // malformed
    ];
    for (const [index, [range, body]] of cases.entries()) {
      const response = await patch(session, body, range);
      expect(response.status, range).toBe(416);
      expect(await errorCodes(response), range).toEqual(['BLOB_UPLOAD_INVALID']);
      // The spec has the client GET the session for its offset after a 416; where the store
      // knows it (the chunk was read and cut back), the 416 carries it as well: 100 bytes held.
      if (index < 2) expect(response.headers.get('range'), range).toBe('0-99');
      expect(await sessionSize(session), range).toBe(100);
    }
    expect(await fileSize(path.join(storeRoot, 'uploads', session.id, 'data'))).toBe(100);

    const second = randomBytes(50);
    expect((await patch(session, second, '100-149')).status).toBe(202);
    const whole = Buffer.concat([first, second]);
    expect((await client.fetch(withDigest(session.location, sha256(whole)), { method: 'PUT' })).status).toBe(201);
  });

  it('a first chunk whose Content-Range says 0-99 but carries 50 bytes is 416 and the session stays empty ("Pushing a blob in chunks")', async () => {
    const session = await startUpload('lies/first');
    const response = await patch(session, randomBytes(50), '0-99');
    expect(response.status).toBe(416);
    expect(await errorCodes(response)).toEqual(['BLOB_UPLOAD_INVALID']);
    // As before its first chunk: no data file at all.
    expect(await fileSize(path.join(storeRoot, 'uploads', session.id, 'data'))).toBeUndefined();
    expect(await sessionSize(session)).toBe(0);
    expect((await client.fetch(session.location, { method: 'DELETE' })).status).toBe(204);
  });
});

describe('a session closed while a chunk is written', () => {
  // The session's row is what makes it open. A DELETE that lands while a PATCH is streaming
  // closes it at once (the spec's DELETE answers 204); the PATCH must then not be answered 202
  // for a session that no longer exists, and must leave no files behind.
  it('a DELETE during a streaming PATCH is 204, the PATCH then gets 404 BLOB_UPLOAD_UNKNOWN, and nothing is left ("Pushing a blob in chunks", "Deleting an upload")', async () => {
    const session = await startUpload('closed/while-patching');
    const connection = await rawConnect();
    await connection.write(
      requestHead('PATCH', session.location, { 'Content-Type': OCTET, 'Transfer-Encoding': 'chunked', Connection: 'close' }),
    );
    // Whole MiB reach the file whichever way the gateway writes (fs-writer.ts).
    await writeChunked(connection, 2 * MiB);
    expect(await eventually(async () => (await sessionFileSize(session.id)) === 2 * MiB), 'the chunk reaches the session file').toBe(true);

    // The PATCH is writing the session; the DELETE closes it without waiting for the chunk.
    const deleted = await client.fetch(session.location, { method: 'DELETE' });
    expect(deleted.status).toBe(204);

    await connection.write('0\r\n\r\n');
    const answer = await connection.closed;
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
    expect(answer).toContain('"BLOB_UPLOAD_UNKNOWN"');
    expect(await eventually(async () => (await uploadFiles(session.id)).length === 0), 'the session files are removed').toBe(true);
    expect(existsSync(path.join(storeRoot, 'uploads', session.id))).toBe(false);

    const status = await client.fetch(session.location);
    expect(status.status).toBe(404);
    await expectStoreConsistent();
  });
});

describe('a session closed while a chunk fails', () => {
  it('a DELETE during a PATCH whose client then vanishes leaves nothing behind ("Deleting an upload")', async () => {
    const session = await startUpload('closed/while-failing');
    expect((await patch(session, randomBytes(4096), '0-4095')).status).toBe(202);
    const connection = await rawConnect();
    await connection.write(requestHead('PATCH', session.location, { 'Content-Type': OCTET, 'Transfer-Encoding': 'chunked' }));
    await writeChunked(connection, 2 * MiB);
    expect(await eventually(async () => (await sessionFileSize(session.id)) === 4096 + 2 * MiB), 'the chunk reaches the session file').toBe(true);

    expect((await client.fetch(session.location, { method: 'DELETE' })).status).toBe(204);
    connection.socket.destroy();
    await connection.closed;

    expect(await eventually(async () => !existsSync(path.join(storeRoot, 'uploads', session.id))), 'the session folder is removed').toBe(true);
    expect((await client.fetch(session.location)).status).toBe(404);
    await expectStoreConsistent();
  });
});

describe('uploads racing to one digest', () => {
  it('two sessions with the same content completed at once both answer 201 and the blob is intact ("Pushing a blob in chunks")', async () => {
    const bytes = randomBytes(3 * MiB + 17);
    const digest = sha256(bytes);
    const sessions = await Promise.all([startUpload('race/app'), startUpload('race/app'), startUpload('race/other')]);
    for (const session of sessions) expect((await patch(session, bytes, `0-${bytes.length - 1}`)).status).toBe(202);

    const puts = await Promise.all(sessions.map((session) => client.fetch(withDigest(session.location, digest), { method: 'PUT' })));
    expect(puts.map((put) => put.status)).toEqual([201, 201, 201]);
    for (const put of puts) expect(put.headers.get('docker-content-digest')).toBe(digest);

    for (const name of ['race/app', 'race/other']) {
      const get = await client.fetch(client.url('blob', { name, digest }));
      expect(get.status).toBe(200);
      expect(Buffer.from(await get.arrayBuffer()).equals(bytes)).toBe(true);
    }
    for (const session of sessions) expect(await uploadFiles(session.id)).toEqual([]);
    expect((await storedBlobs()).filter((stored) => stored === digest)).toHaveLength(1);
  });

  it('monolithic POSTs of the same blob at once all answer 201 and leave one intact blob ("Pushing a blob monolithically")', async () => {
    const bytes = randomBytes(MiB + 3);
    const digest = sha256(bytes);
    const names = ['race/mono-a', 'race/mono-b', 'race/mono-a', 'race/mono-c', 'race/mono-b', 'race/mono-a'];
    const responses = await Promise.all(
      names.map((name) =>
        client.fetch(client.url('blob-upload', { name }, { digest }), { method: 'POST', headers: { 'Content-Type': OCTET }, body: bytes as BodyInit }),
      ),
    );
    expect(responses.map((response) => response.status)).toEqual(names.map(() => 201));
    for (const name of new Set(names)) {
      const get = await client.fetch(client.url('blob', { name, digest }));
      expect(Buffer.from(await get.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });

  it('a mismatched monolithic POST racing a correct one never replaces the good blob ("Pushing a blob monolithically")', async () => {
    const bytes = randomBytes(512 * 1024);
    const digest = sha256(bytes);
    const impostor = randomBytes(512 * 1024);
    const responses = await Promise.all(
      [bytes, impostor, bytes, impostor].map((body) =>
        client.fetch(client.url('blob-upload', { name: 'race/impostor' }, { digest }), { method: 'POST', headers: { 'Content-Type': OCTET }, body: body as BodyInit }),
      ),
    );
    expect(responses.map((response) => response.status)).toEqual([201, 400, 201, 400]);
    const get = await client.fetch(client.url('blob', { name: 'race/impostor', digest }));
    expect(Buffer.from(await get.arrayBuffer()).equals(bytes)).toBe(true);
  });
});

describe('an over-limit manifest from a client that writes before it reads', () => {
  const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

  it('a 5 MiB manifest sent with Content-Length, whole, before its answer is read gets the 413, and the connection serves the next request ("Pushing manifests": 413)', async () => {
    const connection = await writeFirstConnect();
    await connection.write(requestHead('PUT', '/v2/huge/write-first/manifests/v1', { 'Content-Type': MANIFEST, 'Content-Length': 5 * MiB }));
    // Refused from its Content-Length, the body must still be read and dropped: closing with it
    // unread would reset the connection, and this write would fail without a 413 to show.
    await connection.write(Buffer.alloc(5 * MiB, 0x20));
    const refused = await connection.readAnswer();
    expect(refused.status).toBe(413);
    expect(refused.headers.connection).not.toBe('close');
    expect(codesOf(refused.body)).toEqual(['SIZE_INVALID']);

    await connection.write(requestHead('GET', '/v2/', {}));
    expect((await connection.readAnswer()).status).toBe(200);
    connection.socket.destroy();
    expect((await client.fetch(client.url('manifest', { name: 'huge/write-first', reference: 'v1' }))).status).toBe(404);
  });

  it('a manifest declared longer than the 64 MiB the gateway drains gets its 413 with Connection: close, then a FIN rather than a reset ("Pushing manifests": 413)', async () => {
    const connection = await writeFirstConnect();
    await connection.write(requestHead('PUT', '/v2/huge/write-first/manifests/v2', { 'Content-Type': MANIFEST, 'Content-Length': 1024 * MiB }));
    // More than the socket buffers hold: a gateway that closed at once, with this unread, would reset it.
    for (let sent = 0; sent < 16 * MiB; sent += MiB) await connection.write(Buffer.alloc(MiB, 0x20));
    const refused = await connection.readAnswer();
    expect(refused.status).toBe(413);
    expect(refused.headers.connection).toBe('close');
    expect(codesOf(refused.body)).toEqual(['SIZE_INVALID']);
    connection.socket.resume();
    expect(await connection.ended).toBe('end');
    connection.socket.end();
    await new Promise((resolve) => connection.socket.once('close', resolve));
  });
});

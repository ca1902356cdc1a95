import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadAndCount, OciClient, type PushPatternName } from './oci-client.js';

/**
 * The bench's pull check: before a pull scenario's timed rounds, every target must send each
 * blob's exact bytes. A server answering with the right number of wrong bytes must fail it.
 */
let server: http.Server;
let base: URL;
const agent = new Agent();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const body = req.url === '/right' ? 'blob' : 'bloc';
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

afterAll(async () => {
  await agent.close();
  await new Promise((resolve) => server.close(resolve));
});

describe('downloadAndCount', () => {
  const digest = `sha256:${createHash('sha256').update('blob').digest('hex')}`;

  it('passes the exact bytes, checked by digest', async () => {
    expect(await downloadAndCount(agent, new URL('/right', base), 4, digest)).toBe(4);
  });

  it('fails bytes of the right length that do not hash to the digest', async () => {
    await expect(downloadAndCount(agent, new URL('/wrong', base), 4, digest)).rejects.toThrow(/do not hash/);
    // Without a digest (the timed pulls) only the length is checked.
    expect(await downloadAndCount(agent, new URL('/wrong', base), 4)).toBe(4);
  });
});

/**
 * The push patterns replay what real clients were seen sending (see `pushPatterns`): a
 * recording server stands in for the registry, and checks the requests, their bodies and how
 * many connections they came on.
 */
describe('OciClient push patterns', () => {
  interface Seen {
    method: string;
    path: string;
    contentLength: string | undefined;
    chunked: boolean;
    connection: string | undefined;
    bodyBytes: number;
    socket: number;
  }
  let registry: http.Server;
  let origin: string;
  const seen: Seen[] = [];
  const sockets = new Map<object, number>();

  beforeAll(async () => {
    registry = http.createServer((req, res) => {
      let bodyBytes = 0;
      req.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
      req.on('end', () => {
        if (!sockets.has(req.socket)) sockets.set(req.socket, sockets.size);
        seen.push({
          method: req.method!,
          path: req.url!,
          contentLength: req.headers['content-length'],
          chunked: req.headers['transfer-encoding'] === 'chunked',
          connection: req.headers.connection,
          bodyBytes,
          socket: sockets.get(req.socket)!,
        });
        const session = '/v2/r/blobs/uploads/1?_state=s';
        if (req.method === 'HEAD') res.writeHead(404, { 'content-length': 0 }).end();
        else if (req.method === 'POST' || req.method === 'PATCH') res.writeHead(202, { location: session, 'content-length': 0 }).end();
        else res.writeHead(201, { 'content-length': 0 }).end();
      });
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    registry.closeAllConnections();
    await new Promise((resolve) => registry.close(resolve));
  });

  const blob = { digest: `sha256:${'a'.repeat(64)}`, size: 70_000, bytes: Buffer.alloc(70_000, 1) };
  const manifest = { digest: `sha256:${'b'.repeat(64)}`, size: 2, bytes: Buffer.from('{}') };
  const digestQuery = `digest=${encodeURIComponent(blob.digest)}`;

  async function push(pattern: PushPatternName): Promise<Seen[]> {
    seen.length = 0;
    sockets.clear();
    const dispatcher = new Agent({ connections: 1 });
    const client = new OciClient(origin, dispatcher, { pattern, connections: 1 });
    try {
      await client.pushBlob('r', blob);
      await client.putManifest('r', 'v1', manifest, 'application/vnd.oci.image.manifest.v1+json');
    } finally {
      client.close();
      await dispatcher.close();
    }
    return [...seen];
  }

  it('as skopeo: HEAD, POST, the whole body in one PATCH with its length, an empty PUT, the manifest PUT, each on a new connection', async () => {
    const requests = await push('skopeo');
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `HEAD /v2/r/blobs/${blob.digest}`,
      'POST /v2/r/blobs/uploads/',
      'PATCH /v2/r/blobs/uploads/1?_state=s',
      `PUT /v2/r/blobs/uploads/1?_state=s&${digestQuery}`,
      'PUT /v2/r/manifests/v1',
    ]);
    const patch = requests[2]!;
    expect([patch.contentLength, patch.chunked, patch.bodyBytes]).toEqual([String(blob.size), false, blob.size]);
    expect([requests[3]!.contentLength, requests[3]!.bodyBytes]).toEqual(['0', 0]);
    expect(requests.every((r) => r.connection === 'close')).toBe(true);
    expect(new Set(requests.map((r) => r.socket)).size).toBe(requests.length);
  });

  it('as containerd: HEAD, POST, the body with the closing PUT, then HEAD and PUT of the manifest, on one kept-alive connection', async () => {
    const requests = await push('containerd');
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `HEAD /v2/r/blobs/${blob.digest}`,
      'POST /v2/r/blobs/uploads/',
      `PUT /v2/r/blobs/uploads/1?_state=s&${digestQuery}`,
      'HEAD /v2/r/manifests/v1',
      'PUT /v2/r/manifests/v1',
    ]);
    expect([requests[2]!.contentLength, requests[2]!.bodyBytes]).toEqual([String(blob.size), blob.size]);
    expect(requests.some((r) => r.connection === 'close')).toBe(false);
    // undici closes a connection after every HEAD; the pattern's HEADs must not.
    expect(new Set(requests.filter((r) => r.method === 'HEAD').map((r) => r.socket)).size).toBe(1);
  });

  it('post-put: POST, then the body with the closing PUT, and no HEAD', async () => {
    const requests = await push('post-put');
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v2/r/blobs/uploads/',
      `PUT /v2/r/blobs/uploads/1?_state=s&${digestQuery}`,
      'PUT /v2/r/manifests/v1',
    ]);
  });
});

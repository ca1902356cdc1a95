import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClusterHttp } from './cluster-http.js';
import { ControlPlaneHttp, ControlPlaneRequestError } from './control-plane-http.js';

// ControlPlaneHttp against a real HTTP server on loopback standing in for the control plane.

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: http.Server;
let url: string;
const seen: Seen[] = [];
const clusterHttp = createClusterHttp();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (req.url === '/api/v1/regions') return void res.setHeader('content-type', 'application/json').end('{"regions":[]}');
      if (req.url === '/empty') return void res.writeHead(204).end();
      if (req.url === '/refused') return void res.writeHead(409, { 'content-type': 'application/json' }).end(`{"error":{"message":"${'x'.repeat(400)}"}}`);
      if (req.url === '/failing') return void res.writeHead(503).end();
      if (req.url === '/busy') return void res.writeHead(429).end();
      // /hanging: no answer at all.
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await clusterHttp.close();
});

describe('ControlPlaneHttp', () => {
  it('sends the process\'s headers on every request, and a body as JSON', async () => {
    let calls = 0;
    const controlPlane = new ControlPlaneHttp({ url: `${url}/`, fetch: clusterHttp.fetch, headers: async () => ({ authorization: `Bearer token-${++calls}` }) });
    expect(controlPlane.url).toBe(url);
    expect(await controlPlane.json('GET', '/api/v1/regions')).toEqual({ regions: [] });
    await controlPlane.send('POST', '/empty', { origin: 'eu-west', changes: [] });
    expect(seen.slice(-2)).toMatchObject([
      { method: 'GET', url: '/api/v1/regions', headers: { authorization: 'Bearer token-1' }, body: '' },
      { method: 'POST', url: '/empty', headers: { authorization: 'Bearer token-2', 'content-type': 'application/json' }, body: '{"origin":"eu-west","changes":[]}' },
    ]);
    expect(seen.at(-2)!.headers['content-type']).toBeUndefined();
    expect(await controlPlane.json('PUT', '/empty', {})).toBeUndefined();
  });

  it('rejects an answer other than 2xx with its status and the start of its body; 5xx and 429 are transient, a refusal is not', async () => {
    const controlPlane = new ControlPlaneHttp({ url, fetch: clusterHttp.fetch });
    const refused = await controlPlane.send('POST', '/refused', {}).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ControlPlaneRequestError);
    expect(refused).toMatchObject({ status: 409, transient: false });
    // The start of the body only: an error page can be long.
    expect((refused as Error).message).toBe(`POST /refused: the control plane answered 409: ${`{"error":{"message":"${'x'.repeat(400)}"}}`.slice(0, 300)}`);
    expect(await controlPlane.json('GET', '/failing').catch((err: unknown) => err)).toMatchObject({ status: 503, transient: true, message: 'GET /failing: the control plane answered 503' });
    expect(await controlPlane.send('GET', '/busy').catch((err: unknown) => err)).toMatchObject({ status: 429, transient: true });
  });

  it('rejects a control plane that cannot be reached, or does not answer in time, as transient, naming it', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const away = await new ControlPlaneHttp({ url: closedUrl, fetch: clusterHttp.fetch }).send('POST', '/api/v1/changes', {}).catch((err: unknown) => err);
    expect(away).toMatchObject({ status: undefined, transient: true, message: `POST /api/v1/changes: the control plane at ${closedUrl} cannot be reached: ECONNREFUSED` });

    const slow = await new ControlPlaneHttp({ url, fetch: clusterHttp.fetch, timeoutMs: 60_000 }).json('GET', '/hanging', undefined, { timeoutMs: 200 }).catch((err: unknown) => err);
    expect(slow).toMatchObject({ status: undefined, transient: true, message: `GET /hanging: the control plane at ${url} cannot be reached: no answer in time` });
  });
});

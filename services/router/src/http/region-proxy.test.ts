import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegionProxy, relativeLinks } from './region-proxy.js';
import { SlowClientBudget } from './slow-clients.js';
import { BLOB_REDIRECT_HEADER } from '@meridian/proto/cluster-http';

describe('relativeLinks', () => {
  const region = 'http://127.0.0.1:5001';

  // distribution-spec v1.1 "Listing Tags": the Link header's URL may be absolute; through the
  // router, the next page must be asked of the router too.
  it('makes targets at the region\'s own origin relative, keeping path and query', () => {
    expect(relativeLinks('<http://127.0.0.1:5001/v2/team/app/tags/list?n=2&last=b>; rel="next"', region)).toBe('</v2/team/app/tags/list?n=2&last=b>; rel="next"');
  });

  it('leaves relative targets, other origins and every other part of the value alone', () => {
    const value = '</v2/_catalog?n=1&last=a>; rel="next", <https://docs.example/paging>; rel="help"';
    expect(relativeLinks(value, region)).toBe(value);
    expect(relativeLinks('<http://127.0.0.1:5002/v2/x/tags/list>; rel="next"', region)).toBe('<http://127.0.0.1:5002/v2/x/tags/list>; rel="next"');
  });
});

describe('RegionProxy', () => {
  // A plain node:http server stands in for a region: it counts the connections it is asked on.
  let regionConnections = 0;
  let regionSaw: http.IncomingHttpHeaders = {};
  const region = http.createServer((req, res) => {
    regionSaw = req.headers;
    res.writeHead(200, { 'content-length': 1234, 'docker-content-digest': 'sha256:0' });
    res.end();
  });
  region.on('connection', () => regionConnections++);
  const upstream = new Agent({ keepAliveTimeout: 60_000 });
  const proxy = new RegionProxy({ pipelined: upstream, exclusive: upstream }, { upstreamMs: 10_000 }, new SlowClientBudget({ maxBytes: 64 * 1024 * 1024, writeTimeoutMs: 30_000, onCut: () => undefined }));
  const router = http.createServer((req, res) => {
    proxy.forward(req, res, { name: 'eu-west', http: urlOf(region) }, { absoluteLocation: false, clientAddress: '192.0.2.7' }, () => undefined);
  });
  const client = new Agent();

  beforeAll(async () => {
    await Promise.all([region, router].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  });
  afterAll(async () => {
    await Promise.all([upstream.close(), client.close()]);
    await Promise.all([region, router].map((server) => new Promise((resolve) => server.close(resolve))));
  });

  const head = async () => {
    const response = await client.request({ origin: urlOf(router), path: '/v2/a/blobs/sha256:0', method: 'HEAD' });
    await response.body.dump();
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBe('1234');
  };

  // distribution-spec v1.1 "Checking if content exists in the registry": clients HEAD every
  // blob and manifest before a push or pull; through the router, each must not cost a connection.
  it('proxies HEADs one after another on a kept-alive connection to the region', async () => {
    await head();
    await head();
    const opened = regionConnections;
    for (let i = 0; i < 5; i++) await head();
    expect(regionConnections).toBe(opened);
  });

  // A gateway that trusts the router (MERIDIAN_TRUSTED_PROXIES) takes the client's address from
  // the right end of X-Forwarded-For, and would take its token endpoint's scheme and host from
  // X-Forwarded-Proto and -Host: the router appends the first and sends none of the others on.
  it('appends the client\'s address to X-Forwarded-For and drops X-Forwarded-Proto and -Host', async () => {
    const headers = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'elsewhere.example' };
    const response = await client.request({ origin: urlOf(router), path: '/v2/', method: 'HEAD', headers });
    await response.body.dump();
    expect(regionSaw['x-forwarded-for']).toBe('203.0.113.9, 192.0.2.7');
    expect(regionSaw['x-forwarded-proto']).toBeUndefined();
    expect(regionSaw['x-forwarded-host']).toBeUndefined();
  });

  // A gateway that trusts the router answers a blob GET carrying the blob-redirect header with a
  // signed redirect: only the router may ask for one, never a client through it.
  it('drops a blob-redirect header the client sent', async () => {
    const response = await client.request({ origin: urlOf(router), path: '/v2/a/blobs/sha256:0', method: 'HEAD', headers: { [BLOB_REDIRECT_HEADER]: '1' } });
    await response.body.dump();
    expect(response.statusCode).toBe(200);
    expect(regionSaw[BLOB_REDIRECT_HEADER]).toBeUndefined();
  });
});

function urlOf(server: http.Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

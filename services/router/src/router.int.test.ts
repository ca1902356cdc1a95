/**
 * The router against real parts: a control plane (Postgres, Redis), three gateways on their own
 * databases standing as regions eu-west, us-east and ap-southeast, and the router, all over real
 * HTTP on loopback. A test client picks where it is by the source address it binds (any address
 * of 127.0.0.0/8 on Linux), which the router's location table places near one region.
 *
 * Which region served a request is read from the region itself, not from the router's headers:
 * the gateways run without a control plane of their own, so nothing replicates between them, and
 * each holds a different image under `where/am-i:latest`. A manifest's digest names its region.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch, type Response } from 'undici';
import { MediaType } from '@meridian/oci';
import { startTestControlPlane, type TestControlPlane } from '@meridian/control-plane/testing';
import { startTestGateway, type TestGateway } from '@meridian/gateway/testing';
import { buildImage, freePort, sha256, type TestImage } from '@meridian/testkit';
import { createApp, type Router } from './app.js';
import { loadConfig } from './config.js';

const PLACES = [
  { name: 'eu-west', lat: 53.35, lon: -6.26, clients: '127.0.1.0/24' },
  { name: 'us-east', lat: 38.9, lon: -77.04, clients: '127.0.2.0/24' },
  { name: 'ap-southeast', lat: 1.35, lon: 103.82, clients: '127.0.3.0/24' },
] as const;
type RegionName = (typeof PLACES)[number]['name'];
/** A client address near each region (the location table puts it a few kilometres away). */
const NEAR: Record<RegionName, string> = { 'eu-west': '127.0.1.10', 'us-east': '127.0.2.10', 'ap-southeast': '127.0.3.10' };
const LOCATIONS = PLACES.map((place) => ({ cidr: place.clients, lat: place.lat + 0.05, lon: place.lon - 0.05, name: `near ${place.name}` }));

let cp: TestControlPlane;
let cpClosed = false;
const regions = {} as Record<RegionName, TestGateway>;
const images = {} as Record<RegionName, TestImage>;
const routers: Router[] = [];
let router: Router;
let routerUrl: string;
const agents = new Map<string, Agent>();

/** An HTTP client whose connections come from `address`. */
function from(address: string): Agent {
  let agent = agents.get(address);
  if (!agent) agents.set(address, (agent = new Agent({ localAddress: address })));
  return agent;
}

function get(url: string, address: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Response> {
  return fetch(url, { ...init, dispatcher: from(address), redirect: 'manual' });
}

const manifestUrl = (base: string, reference = 'latest') => `${base}/v2/where/am-i/manifests/${reference}`;
const ACCEPT = { accept: [MediaType.OciManifest, MediaType.OciIndex].join(', ') };

/** The region that served a manifest GET, by the digest only that region holds. */
async function servedBy(response: Response): Promise<RegionName | undefined> {
  if (response.status !== 200) throw new Error(`${response.status} from ${response.headers.get("meridian-region")}: ${await response.text()}`);
  expect(response.status).toBe(200);
  const digest = sha256(Buffer.from(await response.arrayBuffer()));
  expect(response.headers.get('docker-content-digest')).toBe(digest);
  return PLACES.find((place) => images[place.name].digest === digest)?.name;
}

async function startRouter(env: Record<string, string>): Promise<{ router: Router; url: string }> {
  const started = await createApp(
    loadConfig({
      PORT: '0',
      MERIDIAN_CONTROL_PLANE: cp.url,
      MERIDIAN_ROUTER_LOCATIONS: JSON.stringify(LOCATIONS),
      MERIDIAN_ROUTER_PROBE_INTERVAL_SECONDS: '0.1',
      // Generous: on a loaded machine a probe may wait its turn; only a refused one should fail fast.
      MERIDIAN_ROUTER_PROBE_TIMEOUT_SECONDS: '5',
      MERIDIAN_ROUTER_REGION_REFRESH_SECONDS: '0.2',
      MERIDIAN_ROUTER_UNHEALTHY_AFTER: '2',
      MERIDIAN_ROUTER_HEALTHY_AFTER: '2',
      ...env,
    }),
    pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  );
  routers.push(started);
  return { router: started, url: await started.listen() };
}

/** Polls `check` until it returns something other than undefined (a liveness bound, not a speed). */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, boundMs = 30_000): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${boundMs / 1000} s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function metric(base: string, line: RegExp): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const match = text.split('\n').find((entry) => line.test(entry));
  return match === undefined ? undefined : Number(match.split(' ').pop());
}

/** Stops a region's gateway from accepting connections (as a crashed process would), keeping its port. */
async function stopAccepting(region: RegionName): Promise<number> {
  const server = regions[region].gateway.server;
  const port = (server.address() as { port: number }).port;
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeAllConnections();
  await closed;
  return port;
}

async function acceptAgain(region: RegionName, port: number): Promise<void> {
  const server = regions[region].gateway.server;
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
}

beforeAll(async () => {
  cp = await startTestControlPlane();
  for (const place of PLACES) {
    // The router is a trusted proxy of each region, as in a cluster: its blob GETs are redirected.
    regions[place.name] = await startTestGateway({ MERIDIAN_REGION: place.name, MERIDIAN_TRUSTED_PROXIES: '127.0.0.1' });
    images[place.name] = await regions[place.name].client.pushImage('where/am-i', 'latest', buildImage());
    const registered = await cp.request('POST', '/api/v1/regions', { name: place.name, http: regions[place.name].url, grpc: '127.0.0.1:1', lat: place.lat, lon: place.lon });
    expect(registered.status).toBe(201);
  }
  ({ router, url: routerUrl } = await startRouter({}));
}, 120_000);

afterAll(async () => {
  for (const started of routers) await started.close();
  for (const agent of agents.values()) await agent.close();
  for (const region of Object.values(regions)) await region?.close();
  if (!cpClosed) await cp?.close();
});

describe('nearest-region routing', () => {
  it('serves a client from each place from the region nearest it (distribution-spec v1.1 "Pulling manifests", proxied)', async () => {
    for (const place of PLACES) {
      const response = await get(manifestUrl(routerUrl), NEAR[place.name], { headers: ACCEPT });
      expect(await servedBy(response)).toBe(place.name);
      expect(response.headers.get('meridian-region')).toBe(place.name);
      expect(response.headers.get('content-type')).toBe(MediaType.OciManifest);
    }
  });

  it('prefers the region a Meridian-Region header names', async () => {
    const response = await get(manifestUrl(routerUrl), NEAR['eu-west'], { headers: { ...ACCEPT, 'meridian-region': 'ap-southeast' } });
    expect(await servedBy(response)).toBe('ap-southeast');
  });

  it('sends a client the location table does not place to the default region, or by name without one', async () => {
    expect(await servedBy(await get(manifestUrl(routerUrl), '127.0.0.1', { headers: ACCEPT }))).toBe('ap-southeast');
    const { url } = await startRouter({ MERIDIAN_ROUTER_DEFAULT_REGION: 'us-east' });
    expect(await servedBy(await get(manifestUrl(url), '127.0.0.1', { headers: ACCEPT }))).toBe('us-east');
  });

  // distribution-spec v1.1 "Pulling blobs": a registry may answer a blob GET with a redirect to
  // where the bytes are; clients follow it. The router asks the region for the redirect (with auth
  // off, unsigned: signed-blob-urls.int.test.ts has it signed) and makes it absolute there.
  it('redirects a blob GET (307) to the same path and query at the nearest region, whose bytes follow', async () => {
    const layer = images['us-east'].layers[0]!;
    const path = `/v2/where/am-i/blobs/${layer.digest}?ns=example`;
    const response = await get(`${routerUrl}${path}`, NEAR['us-east']);
    expect(response.status).toBe(307);
    expect(response.headers.get('location')).toBe(`${regions['us-east'].url}${path}`);
    expect(response.headers.get('meridian-region')).toBe('us-east');
    const followed = await fetch(`${routerUrl}${path}`, { dispatcher: from(NEAR['us-east']) });
    expect(followed.status).toBe(200);
    expect(Buffer.from(await followed.arrayBuffer()).equals(layer.bytes)).toBe(true);
  });

  // distribution-spec v1.1 "Checking if content exists in the registry": HEAD answers with the
  // length and digest and no body.
  it('proxies a blob HEAD with its Content-Length and Docker-Content-Digest', async () => {
    const layer = images['eu-west'].layers[1]!;
    const head = await get(`${routerUrl}/v2/where/am-i/blobs/${layer.digest}`, NEAR['eu-west'], { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(layer.bytes.length));
    expect(head.headers.get('docker-content-digest')).toBe(layer.digest);
    const elsewhere = await get(`${routerUrl}/v2/where/am-i/blobs/${layer.digest}`, NEAR['us-east'], { method: 'HEAD' });
    expect(elsewhere.status).toBe(404);
  });

  // distribution-spec v1.1 "Listing Tags": `n` and `last`, with a Link header to the next page.
  it('pages a tag list through the router, with the region\'s Link header', async () => {
    for (const tag of ['a', 'b', 'c']) await regions['eu-west'].client.pushManifest('where/am-i', tag, images['eu-west'].manifestBytes);
    const first = await get(`${routerUrl}/v2/where/am-i/tags/list?n=2`, NEAR['eu-west']);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ name: 'where/am-i', tags: ['a', 'b'] });
    const link = first.headers.get('link')!;
    expect(link).toMatch(/^<\/v2\/where\/am-i\/tags\/list\?n=2&last=b>; rel="next"$/);
    const next = await get(`${routerUrl}${/<([^>]+)>/.exec(link)![1]}`, NEAR['eu-west']);
    expect(await next.json()).toEqual({ name: 'where/am-i', tags: ['c', 'latest'] });
  });

  // distribution-spec v1.1 "Pushing blobs": POST opens a session whose Location the client
  // follows; through the router it points at the region that holds the session.
  it('opens an upload in the nearest region, with an absolute Location there; the PUT to it lands the blob in that region only', async () => {
    const opened = await get(`${routerUrl}/v2/where/pushed/blobs/uploads/`, NEAR['ap-southeast'], { method: 'POST' });
    expect(opened.status).toBe(202);
    const location = opened.headers.get('location')!;
    expect(location.startsWith(`${regions['ap-southeast'].url}/v2/where/pushed/blobs/uploads/`)).toBe(true);
    const bytes = Buffer.from(`pushed through the router ${Date.now()}`);
    const url = new URL(location);
    url.searchParams.set('digest', sha256(bytes));
    const put = await fetch(url, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(put.status).toBe(201);
    const blob = `/v2/where/pushed/blobs/${sha256(bytes)}`;
    expect((await fetch(`${regions['ap-southeast'].url}${blob}`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${regions['eu-west'].url}${blob}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('pushes a manifest through the router (the request body streams to the region)', async () => {
    const image = buildImage();
    for (const blob of [image.config, ...image.layers]) await regions['us-east'].client.pushBlob('where/pushed', blob.bytes);
    const put = await get(`${routerUrl}/v2/where/pushed/manifests/v1`, NEAR['us-east'], { method: 'PUT', headers: { 'content-type': image.mediaType }, body: image.manifestBytes });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(image.digest);
    expect((await fetch(`${regions['us-east'].url}/v2/where/pushed/manifests/v1`, { method: 'HEAD', headers: ACCEPT })).headers.get('docker-content-digest')).toBe(image.digest);
  });

  it('passes the region\'s OCI errors through, and answers paths no route knows itself (404 UNSUPPORTED)', async () => {
    const unknown = await get(manifestUrl(routerUrl, 'nope'), NEAR['eu-west'], { headers: ACCEPT });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    const nowhere = await get(`${routerUrl}/nowhere`, NEAR['eu-west']);
    expect(nowhere.status).toBe(404);
    expect(await nowhere.json()).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] });
  });

  it('reports its regions on /readyz and /metrics (meridian_region_healthy)', async () => {
    const ready = await fetch(`${routerUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      controlPlane: { ok: true },
      regions: { 'eu-west': { state: 'active', routing: true, healthy: true } },
      routable: ['ap-southeast', 'eu-west', 'us-east'],
    });
    for (const place of PLACES) expect(await metric(routerUrl, new RegExp(`^meridian_region_healthy\\{.*target_region="${place.name}"`))).toBe(1);
    expect((await fetch(`${routerUrl}/healthz`)).status).toBe(200);
  });
});

describe('routing switch and health', () => {
  it('sends no client to a region whose routing is switched off, and again once it is on', async () => {
    expect((await cp.request('PUT', '/api/v1/regions/eu-west/routing', { enabled: false })).status).toBe(200);
    await eventually('eu-west clients served by us-east', async () => ((await servedBy(await get(manifestUrl(routerUrl), NEAR['eu-west'], { headers: ACCEPT }))) === 'us-east' ? true : undefined));
    await cp.request('PUT', '/api/v1/regions/eu-west/routing', { enabled: true });
    await eventually('eu-west clients served by eu-west', async () => ((await servedBy(await get(manifestUrl(routerUrl), NEAR['eu-west'], { headers: ACCEPT }))) === 'eu-west' ? true : undefined));
  });

  it('takes a region that stops answering out after failed probes, serves its clients from the next nearest, and puts it back when it returns', async () => {
    const port = await stopAccepting('eu-west');
    try {
      await eventually('eu-west unhealthy', async () => ((await metric(routerUrl, /^meridian_region_healthy\{.*target_region="eu-west"/)) === 0 ? true : undefined));
      expect(await servedBy(await get(manifestUrl(routerUrl), NEAR['eu-west'], { headers: ACCEPT }))).toBe('us-east');
      const redirect = await get(`${routerUrl}/v2/where/am-i/blobs/${images['us-east'].layers[0]!.digest}`, NEAR['eu-west']);
      expect(redirect.headers.get('location')!.startsWith(regions['us-east'].url)).toBe(true);
      const ready = (await (await fetch(`${routerUrl}/readyz`)).json()) as { regions: Record<string, { healthy: boolean; error?: string }> };
      expect(ready.regions['eu-west']).toMatchObject({ healthy: false, error: expect.stringContaining('ECONNREFUSED') });
    } finally {
      await acceptAgain('eu-west', port);
    }
    await eventually('eu-west healthy', async () => ((await metric(routerUrl, /^meridian_region_healthy\{.*target_region="eu-west"/)) === 1 ? true : undefined));
    expect(await servedBy(await get(manifestUrl(routerUrl), NEAR['eu-west'], { headers: ACCEPT }))).toBe('eu-west');
  });

  it('retries a request the nearest region refuses before its probes noticed, once, on the next nearest', async () => {
    // Probes far apart: the router still counts eu-west healthy when it stops.
    const { url } = await startRouter({ MERIDIAN_ROUTER_PROBE_INTERVAL_SECONDS: '3600' });
    expect(await servedBy(await get(manifestUrl(url), NEAR['eu-west'], { headers: ACCEPT }))).toBe('eu-west');
    const port = await stopAccepting('eu-west');
    try {
      expect(await servedBy(await get(manifestUrl(url), NEAR['eu-west'], { headers: ACCEPT }))).toBe('us-east');
      expect(await metric(url, /^meridian_router_retries_total\{.*target_region="eu-west"/)).toBe(1);
      // With the next nearest refusing too, the client gets the OCI error of a failed region.
      const usPort = await stopAccepting('us-east');
      try {
        const failed = await get(manifestUrl(url), NEAR['eu-west'], { headers: ACCEPT });
        expect(failed.status).toBe(502);
        expect(await failed.json()).toMatchObject({ errors: [{ code: 'UNKNOWN', message: 'regions eu-west and us-east failed before answering' }] });
      } finally {
        await acceptAgain('us-east', usPort);
      }
    } finally {
      await acceptAgain('eu-west', port);
    }
  });

  it('answers 503 UNKNOWN with Retry-After when no region can take requests, and is not ready', async () => {
    const { url } = await startRouter({ MERIDIAN_CONTROL_PLANE: `http://127.0.0.1:${await freePort()}` });
    const response = await get(manifestUrl(url), NEAR['eu-west'], { headers: ACCEPT });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(await response.json()).toMatchObject({ errors: [{ code: 'UNKNOWN', message: expect.stringContaining('no region can take requests') }] });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'unavailable', controlPlane: { ok: false, error: 'ECONNREFUSED' }, routable: [] });
  });

  it('keeps routing with the last region list while the control plane is down', async () => {
    await cp.close();
    cpClosed = true;
    await eventually('control plane seen down', async () => {
      const ready = (await (await fetch(`${routerUrl}/readyz`)).json()) as { status: string; controlPlane: { ok: boolean } };
      return ready.controlPlane.ok === false && ready.status === 'ready' ? true : undefined;
    });
    // (The regions stopped by the tests above may take a probe or two to count healthy again.)
    for (const place of PLACES) {
      await eventually(`${place.name} clients served by ${place.name}`, async () =>
        (await servedBy(await get(manifestUrl(routerUrl), NEAR[place.name], { headers: ACCEPT }))) === place.name ? true : undefined,
      );
    }
  }, 120_000);
});

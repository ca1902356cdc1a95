/**
 * The router's connections to a region (RegionDispatchers): small, bounded answers share
 * pipelined connections (RFC 9112 §9.3.2), everything else has a connection to itself, and a
 * client that reads slowly never holds up the answers pipelined behind its own. Plain node:http
 * servers stand in for the control plane (the region list) and for the region, which counts the
 * connections it is asked on and holds answers back until it has the requests a test sends.
 */
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type Router } from '../app.js';
import { loadConfig } from '../config.js';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** An answer larger than the sockets between router and client hold, so a client that reads nothing pushes back. */
const LARGE_ANSWER_BYTES = 32 * 1024 * 1024;

/** Requests whose answers wait until `release` has as many as it waits for. */
let held: http.ServerResponse[] = [];
let largeAsked = () => undefined as void;
let finishSlow = () => undefined as void;
const HALF_ANSWER_BYTES = 64 * 1024;
let release: { count: number; done: () => void } | undefined;
/** The connections the held requests came on. */
const heldOn = new Set<net.Socket>();
const arrivals = new EventEmitter();

const region = http.createServer((req, res) => {
  const answer = (body: Buffer) => {
    res.writeHead(200, { 'content-type': MANIFEST, 'content-length': body.length });
    res.end(body);
  };
  if (req.url === '/readyz') return answer(Buffer.from('{}'));
  if (req.url!.startsWith('/v2/slow/')) {
    // Half of the answer now, the rest when the test says.
    res.writeHead(200, { 'content-type': MANIFEST, 'content-length': 2 * HALF_ANSWER_BYTES });
    res.write(Buffer.alloc(HALF_ANSWER_BYTES, 'a'));
    finishSlow = () => res.end(Buffer.alloc(HALF_ANSWER_BYTES, 'b'));
    return;
  }
  if (req.url!.startsWith('/v2/leaving/')) arrivals.emit('leaving');
  if (req.url!.startsWith('/v2/large/')) {
    largeAsked();
    return answer(Buffer.alloc(LARGE_ANSWER_BYTES, 'x'));
  }
  if (!req.url!.startsWith('/v2/held/')) return answer(Buffer.from('{"schemaVersion":2}'));
  held.push(res);
  heldOn.add(req.socket);
  arrivals.emit('held');
  if (release && held.length === release.count) {
    for (const waiting of held) {
      waiting.writeHead(200, { 'content-type': MANIFEST, 'content-length': 2 });
      waiting.end('{}');
    }
    held = [];
    release.done();
  }
});

const controlPlane = http.createServer((_req, res) => {
  const regions = [{ name: 'eu-west', http: urlOf(region), grpc: '127.0.0.1:1', lat: 53.35, lon: -6.26, state: 'active', routing: true, heartbeatAt: null, backfill: null }];
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ regions }));
});

let router: Router;
let routerUrl: string;
const client = new Agent();

beforeAll(async () => {
  await Promise.all([region, controlPlane].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  router = await createApp(loadConfig({ PORT: '0', MERIDIAN_WORKERS: '1', MERIDIAN_CONTROL_PLANE: urlOf(controlPlane) }), pino({ level: 'silent' }));
  routerUrl = await router.listen();
});

afterAll(async () => {
  await router?.close();
  await client.close();
  await Promise.all([region, controlPlane].map((server) => new Promise((resolve) => server.close(resolve))));
});

async function get(path: string): Promise<number> {
  const response = await client.request({ origin: routerUrl, path, method: 'GET', headers: { accept: MANIFEST } });
  await response.body.dump();
  return response.statusCode;
}

/**
 * How many connections the region was asked on for `count` GETs of `path`, all in flight at once
 * in the end: each is sent once the region has the one before, so every connection opened for an
 * earlier one is up and in use when the next is sent.
 */
async function connectionsFor(path: string, count: number): Promise<number> {
  heldOn.clear();
  const released = new Promise<void>((done) => (release = { count, done }));
  const answers: Array<Promise<number>> = [];
  for (let i = 0; i < count; i++) {
    const arrived = once(arrivals, 'held');
    answers.push(get(path));
    await arrived;
  }
  await released;
  expect(await Promise.all(answers)).toEqual(Array(count).fill(200));
  return heldOn.size;
}

describe('connections to a region', () => {
  // Sixteen manifest GETs in flight at once take sixteen connections without pipelining; with it,
  // one connection carries up to eight (PIPELINED_REQUESTS).
  it('carries concurrent manifest GETs (distribution-spec v1.1 "Pulling manifests") on shared, pipelined connections', async () => {
    expect(await connectionsFor('/v2/held/app/manifests/v1', 16)).toBe(2);
  });

  // A tag list grows with the repository, and a region serves a blob it is still filling from a
  // peer itself: neither waits behind another answer on a connection, nor holds one up.
  it('gives each tag list or blob GET in flight a connection of its own', async () => {
    expect(await connectionsFor('/v2/held/app/tags/list', 16)).toBe(16);
    expect(await connectionsFor(`/v2/held/app/blobs/sha256:${'0'.repeat(64)}`, 16)).toBe(16);
  });

  // The client of the first GET reads nothing: its answer is taken from the region all the same
  // (held for it by the router), so the answer pipelined behind it on the same connection arrives.
  it('answers a GET pipelined behind the answer of a client that reads nothing', async () => {
    const stalled = net.connect((router.server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise<void>((resolve) => stalled.once('connect', resolve));
    stalled.pause();
    const asked = new Promise<void>((resolve) => (largeAsked = resolve));
    stalled.write(`GET /v2/large/app/manifests/v1 HTTP/1.1\r\nhost: router\r\naccept: ${MANIFEST}\r\n\r\n`);
    try {
      // Sent once the large answer is under way: on the same connection, behind it.
      await asked;
      expect(await get('/v2/small/app/manifests/v1')).toBe(200);
    } finally {
      stalled.destroy();
    }
  });

  // undici stops a request by closing its connection and sending those pipelined with it again:
  // a client leaving must not do that to the answer ahead of its own, already half relayed.
  it('goes on relaying an answer when a client whose GET is pipelined behind it leaves', async () => {
    const slow = await client.request({ origin: routerUrl, path: '/v2/slow/app/manifests/v1', method: 'GET', headers: { accept: MANIFEST } });
    expect(slow.statusCode).toBe(200);
    const leaving = net.connect((router.server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise<void>((resolve) => leaving.once('connect', resolve));
    const asked = once(arrivals, 'leaving');
    leaving.write(`GET /v2/leaving/app/manifests/v1 HTTP/1.1\r\nhost: router\r\naccept: ${MANIFEST}\r\n\r\n`);
    await asked;
    const counted = await manifestGetsCounted();
    leaving.destroy();
    // The router has seen the client leave once it has counted that request.
    while ((await manifestGetsCounted()) === counted) await new Promise((resolve) => setImmediate(resolve));
    finishSlow();
    const body = Buffer.from(await slow.body.arrayBuffer());
    expect(body.length).toBe(2 * HALF_ANSWER_BYTES);
    expect(body.subarray(HALF_ANSWER_BYTES).every((byte) => byte === 'b'.charCodeAt(0))).toBe(true);
  });
});

/** The router's count of manifest GETs answered 200 (libs/telemetry counts a request once its response closes). */
async function manifestGetsCounted(): Promise<number> {
  const response = await client.request({ origin: routerUrl, path: '/metrics', method: 'GET' });
  const text = await response.body.text();
  const line = text.split('\n').find((entry) => entry.startsWith('meridian_http_requests_total{') && entry.includes('route="manifest"') && entry.includes('method="GET"') && entry.includes('status="200"'));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

function urlOf(server: http.Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

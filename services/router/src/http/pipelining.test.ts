/**
 * The router's connections to a region (RegionDispatchers): small, bounded answers share
 * pipelined connections (RFC 9112 §9.3.2), spread over MERIDIAN_ROUTER_PIPELINED_CONNECTIONS of
 * them; everything else has a connection to itself. A client that reads slowly never holds up the
 * answers pipelined behind its own, within a budget of memory and time; an answer the region is
 * slow to give holds up nothing behind it; an answer larger than a manifest may be is refused.
 * Plain node:http servers stand in for the control plane (the region list) and for the region,
 * which counts the connections it is asked on and holds answers back until a test lets them go.
 */
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { MAX_MANIFEST_BYTES } from '@meridian/oci';
import { until } from '@meridian/testkit';
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type Router } from '../app.js';
import { loadConfig } from '../config.js';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** Requests whose answers wait until `release` has as many as it waits for. */
let held: http.ServerResponse[] = [];
let release: { count: number; done: () => void } | undefined;
/** The connections the held requests came on. */
const heldOn = new Set<net.Socket>();
let finishSlow = () => undefined as void;
let finishStalled = () => undefined as void;
const HALF_ANSWER_BYTES = 64 * 1024;
/** An answer of UTF-8 text outside ASCII and every byte value besides. */
const EVERY_BYTE = Buffer.concat([Buffer.from('{"annotation":"é ✓ 𝄞"}'), Buffer.from(Array.from({ length: 256 }, (_, value) => value))]);
/** The connection the stalled request came on, and the paths asked on each connection. */
let stalledOn: net.Socket | undefined;
const askedOn = new Map<net.Socket, string[]>();
const arrivals = new EventEmitter();

const region = http.createServer((req, res) => {
  const url = req.url!;
  const answer = (body: Buffer) => {
    res.writeHead(200, { 'content-type': MANIFEST, 'content-length': body.length });
    res.end(body);
  };
  const asked = askedOn.get(req.socket) ?? [];
  askedOn.set(req.socket, asked);
  asked.push(url);
  if (url === '/readyz') return answer(Buffer.from('{}'));
  if (url.startsWith('/v2/slow/')) {
    // Half of the answer now, the rest when the test says.
    res.writeHead(200, { 'content-type': MANIFEST, 'content-length': 2 * HALF_ANSWER_BYTES });
    res.write(Buffer.alloc(HALF_ANSWER_BYTES, 'a'));
    finishSlow = () => res.end(Buffer.alloc(HALF_ANSWER_BYTES, 'b'));
    return;
  }
  if (url.startsWith('/v2/stalled/')) {
    // A manifest the region takes its time over (one it reads from a peer first): answered when the test says.
    stalledOn = req.socket;
    finishStalled = () => answer(Buffer.from('{"schemaVersion":2}'));
    arrivals.emit('stalled');
    return;
  }
  if (url.startsWith('/v2/leaving/')) arrivals.emit('leaving');
  if (url.startsWith('/v2/large/')) {
    arrivals.emit('large');
    return answer(Buffer.alloc(MAX_MANIFEST_BYTES, 'x'));
  }
  if (url.startsWith('/v2/bytes/')) return answer(EVERY_BYTE);
  if (url.startsWith('/v2/oversized/')) return answer(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 'x'));
  if (url.startsWith('/v2/unsized/')) {
    // No Content-Length (chunked): only the bytes themselves tell the size.
    res.writeHead(200, { 'content-type': MANIFEST });
    for (let sent = 0; sent <= MAX_MANIFEST_BYTES; sent += 1024 * 1024) res.write(Buffer.alloc(1024 * 1024, 'x'));
    res.end();
    return;
  }
  if (!url.startsWith('/v2/held/')) return answer(Buffer.from('{"schemaVersion":2}'));
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

interface TestRouter {
  router: Router;
  url: string;
  /** What it logged at warn and above, parsed. */
  logs: Array<Record<string, unknown>>;
}

const routers: TestRouter[] = [];
const client = new Agent();

/** A router of one process in front of the region, with `env` besides the defaults. */
async function startRouter(env: Record<string, string>): Promise<TestRouter> {
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const router = await createApp(loadConfig({ PORT: '0', MERIDIAN_WORKERS: '1', MERIDIAN_CONTROL_PLANE: urlOf(controlPlane), ...env }), logger);
  const started = { router, url: await router.listen(), logs };
  routers.push(started);
  return started;
}

/** Requests pipelined behind a stalled one are sent again only after an hour: never, in these tests. */
const NEVER_STALLED = { MERIDIAN_ROUTER_PIPELINE_STALL_SECONDS: '3600' };
/** One pipelined connection to the region: every request that can share one shares it. */
const ONE_CONNECTION = { MERIDIAN_ROUTER_PIPELINED_CONNECTIONS: '1', ...NEVER_STALLED };

beforeAll(async () => {
  await Promise.all([region, controlPlane].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
});

afterAll(async () => {
  await Promise.all(routers.map(({ router }) => router.close()));
  await client.close();
  await Promise.all([region, controlPlane].map((server) => new Promise((resolve) => server.close(resolve))));
});

async function get(routerUrl: string, path: string): Promise<number> {
  const response = await client.request({ origin: routerUrl, path, method: 'GET', headers: { accept: MANIFEST } });
  await response.body.dump();
  return response.statusCode;
}

/**
 * How many connections the region was asked on for `count` GETs of `path`, all in flight at once
 * in the end: each is sent once the region has the one before, so every connection opened for an
 * earlier one is up and in use when the next is sent.
 */
async function connectionsFor(routerUrl: string, path: string, count: number): Promise<number> {
  heldOn.clear();
  const released = new Promise<void>((done) => (release = { count, done }));
  const answers: Array<Promise<number>> = [];
  for (let i = 0; i < count; i++) {
    const arrived = once(arrivals, 'held');
    answers.push(get(routerUrl, path));
    await arrived;
  }
  await released;
  expect(await Promise.all(answers)).toEqual(Array(count).fill(200));
  return heldOn.size;
}

/** The connections to the region that asked for paths starting with `prefix`. */
function connectionsAsking(prefix: string): net.Socket[] {
  return [...askedOn].filter(([, paths]) => paths.some((path) => path.startsWith(prefix))).map(([socket]) => socket);
}

describe('connections to a region', () => {
  let spread: TestRouter;
  let single: TestRouter;
  beforeAll(async () => {
    [spread, single] = await Promise.all([startRouter(NEVER_STALLED), startRouter(ONE_CONNECTION)]);
  });

  // Sixteen manifest GETs in flight at once take sixteen connections without pipelining; with
  // it, they are spread over the pipelined connections (4 by default), up to 8 on each, and a
  // router with fewer opens more pipelined ones once those it has are full.
  it('carries concurrent manifest GETs (distribution-spec v1.1 "Pulling manifests") on shared, pipelined connections', async () => {
    expect(await connectionsFor(spread.url, '/v2/held/app/manifests/v1', 16)).toBe(4);
    expect(await connectionsFor(single.url, '/v2/held/app/manifests/v1', 16)).toBe(2);
  });

  // undici's pool keeps using the first connection while it has room, so manifest GETs one at a
  // time all went on one connection, and to one worker process of a region whose workers accept
  // connections themselves. They take turns on the pipelined connections.
  it('spreads manifest GETs one at a time over the pipelined connections', async () => {
    for (let i = 0; i < 8; i++) expect(await get(spread.url, `/v2/turns/app/manifests/v${i}`)).toBe(200);
    expect(connectionsAsking('/v2/turns/').length).toBe(4);
  });

  // distribution-spec v1.1 "Pulling manifests": a manifest's digest is over its exact bytes, so
  // an answer reaches the client as the region sent it, byte for byte.
  it('passes an answer on byte for byte, whatever its bytes', async () => {
    const response = await client.request({ origin: spread.url, path: '/v2/bytes/app/manifests/v1', method: 'GET' });
    expect(response.statusCode).toBe(200);
    expect(Buffer.from(await response.body.arrayBuffer()).equals(EVERY_BYTE)).toBe(true);
  });

  // A tag list grows with the repository, and a region serves a blob it is still filling from a
  // peer itself: neither waits behind another answer on a connection, nor holds one up.
  it('gives each tag list or blob GET in flight a connection of its own', async () => {
    expect(await connectionsFor(spread.url, '/v2/held/app/tags/list', 16)).toBe(16);
    expect(await connectionsFor(spread.url, `/v2/held/app/blobs/sha256:${'0'.repeat(64)}`, 16)).toBe(16);
  });

  // The client of the first GETs reads nothing: their answers are taken from the region all the
  // same (held for it by the router), so the answer pipelined behind them arrives.
  it('answers a GET pipelined behind the answers of a client that reads nothing', async () => {
    const stalled = await pausedClient(single.router);
    const asked = once(arrivals, 'large');
    stalled.write(pipelinedGets('/v2/large/app/manifests/v1', 3));
    try {
      // Sent once the large answers are under way: on the same connection, behind them.
      await asked;
      expect(await get(single.url, '/v2/small/app/manifests/v1')).toBe(200);
    } finally {
      stalled.destroy();
    }
  });

  // undici stops a request by closing its connection and sending those pipelined with it again:
  // a client leaving must not do that to the answer ahead of its own, already half relayed.
  it('goes on relaying an answer when a client whose GET is pipelined behind it leaves', async () => {
    const slow = await client.request({ origin: single.url, path: '/v2/slow/app/manifests/v1', method: 'GET', headers: { accept: MANIFEST } });
    expect(slow.statusCode).toBe(200);
    const leaving = net.connect((single.router.server.address() as AddressInfo).port, '127.0.0.1');
    await once(leaving, 'connect');
    const asked = once(arrivals, 'leaving');
    leaving.write(pipelinedGets('/v2/leaving/app/manifests/v1', 1));
    await asked;
    const counted = await manifestGetsCounted(single.url);
    leaving.destroy();
    // The router has seen the client leave once it has counted that request.
    await until(async () => (await manifestGetsCounted(single.url)) > counted, { what: 'the leaving client\'s GET counted' });
    finishSlow();
    const body = Buffer.from(await slow.body.arrayBuffer());
    expect(body.length).toBe(2 * HALF_ANSWER_BYTES);
    expect(body.subarray(HALF_ANSWER_BYTES).every((byte) => byte === 'b'.charCodeAt(0))).toBe(true);
  });

  // A manifest is at most 4 MiB (MAX_MANIFEST_BYTES), and only that bound makes it safe to read
  // pipelined answers whatever the client's pace: a larger one is refused with the error body.
  it('refuses an answer whose Content-Length exceeds the manifest limit, and goes on serving', async () => {
    const response = await client.request({ origin: single.url, path: '/v2/oversized/app/manifests/v1', method: 'GET', headers: { accept: MANIFEST } });
    const body = (await response.body.json()) as { errors: Array<{ code: string; message: string }> };
    expect(response.statusCode).toBe(502);
    expect(body.errors[0]!.code).toBe('UNKNOWN');
    expect(body.errors[0]!.message).toContain(String(MAX_MANIFEST_BYTES));
    expect(await get(single.url, '/v2/small/app/manifests/v1')).toBe(200);
  });

  // Without a Content-Length the headers are out before the size is known: the client's
  // connection is cut where the answer passes the limit, so it cannot take what it got for the whole.
  it('cuts an answer without a length where it passes the manifest limit', async () => {
    const response = await client.request({ origin: single.url, path: '/v2/unsized/app/manifests/v1', method: 'GET', headers: { accept: MANIFEST } });
    const outcome = await response.body.arrayBuffer().then(
      (body) => `${body.byteLength} bytes, taken for the whole answer`,
      () => 'cut',
    );
    expect(outcome).toBe('cut');
    expect(await get(single.url, '/v2/small/app/manifests/v1')).toBe(200);
  });
});

describe('an answer the region is slow to give', () => {
  // The region holds the first manifest GET's answer (a read-through from a peer, say); seven more
  // are sent on the one pipelined connection, behind it, before it counts as stalled (2 s). They
  // are answered while it is still held: sent again on connections of their own.
  it('holds up none of the requests pipelined behind it', async () => {
    const { url } = await startRouter({ MERIDIAN_ROUTER_PIPELINED_CONNECTIONS: '1', MERIDIAN_ROUTER_PIPELINE_STALL_SECONDS: '2' });
    const arrived = once(arrivals, 'stalled');
    let stalledAnswered = false;
    const stalled = client.request({ origin: url, path: '/v2/stalled/app/manifests/v1', method: 'GET', headers: { accept: MANIFEST } }).finally(() => (stalledAnswered = true));
    await arrived;
    const behind = Array.from({ length: 7 }, (_, i) => `/v2/behind/app/manifests/v${i}`);
    expect(await Promise.all(behind.map((path) => get(url, path)))).toEqual(Array(7).fill(200));
    expect(stalledAnswered).toBe(false);
    // Each was asked behind the stalled one first, and answered from another connection.
    expect(askedOn.get(stalledOn!)!.filter((path) => path.startsWith('/v2/behind/')).sort()).toEqual(behind);
    finishStalled();
    const response = await stalled;
    await response.body.dump();
    expect(response.statusCode).toBe(200);
  });
});

describe('clients that read nothing', () => {
  // A budget of 6 MiB: a client pipelining four 4 MiB manifest GETs and reading nothing has more
  // than that held for it (the kernel's socket buffers take a few MiB at most), and is cut; another
  // client's GET of such a manifest goes through.
  it('cuts the client holding the most when the process holds more than its budget for slow clients', async () => {
    const budget = await startRouter({ ...ONE_CONNECTION, MERIDIAN_ROUTER_SLOW_CLIENT_BUFFER_MIB: '6' });
    const readRest = await readNothingUntilCut(budget, 4, 'budget');
    const response = await client.request({ origin: budget.url, path: '/v2/large/app/manifests/v2', method: 'GET', headers: { accept: MANIFEST } });
    expect((await response.body.arrayBuffer()).byteLength).toBe(MAX_MANIFEST_BYTES);
    // The connection was closed before all four answers went.
    expect(await readRest()).toBeLessThan(4 * MAX_MANIFEST_BYTES);
    expect(await heldBytes(budget.url)).toBe(0);
  });

  it('cuts a client that takes nothing of what is held for it within the write timeout', async () => {
    const deadline = await startRouter({ ...ONE_CONNECTION, MERIDIAN_ROUTER_CLIENT_WRITE_TIMEOUT_SECONDS: '0.5' });
    const readRest = await readNothingUntilCut(deadline, 2, 'deadline');
    expect(await heldBytes(deadline.url)).toBe(0);
    expect(await readRest()).toBeLessThan(2 * MAX_MANIFEST_BYTES);
  });
});

/**
 * A client pipelining `count` GETs of 4 MiB manifests and reading nothing, until `target` logs
 * cutting it for `reason` (once). Resolves with what reads the rest: the bytes it got in all.
 */
async function readNothingUntilCut(target: TestRouter, count: number, reason: string): Promise<() => Promise<number>> {
  const socket = await pausedClient(target.router);
  const received = bytesReceived(socket);
  socket.write(pipelinedGets('/v2/large/app/manifests/v1', count));
  await until(() => target.logs.some((line) => line.reason === reason), { what: `a client cut logged for its ${reason}` });
  expect(target.logs.filter((line) => line.reason === reason)).toHaveLength(1);
  return () => {
    socket.resume();
    return received;
  };
}

/** A raw connection to the router that reads nothing until resumed. */
async function pausedClient(router: Router): Promise<net.Socket> {
  const socket = net.connect((router.server.address() as AddressInfo).port, '127.0.0.1');
  await once(socket, 'connect');
  socket.pause();
  return socket;
}

/** Every byte the socket receives, counted until it closes. */
function bytesReceived(socket: net.Socket): Promise<number> {
  let total = 0;
  socket.on('data', (chunk: Buffer) => (total += chunk.length));
  socket.on('error', () => undefined);
  return once(socket, 'close').then(() => total);
}

function pipelinedGets(path: string, count: number): string {
  return `GET ${path} HTTP/1.1\r\nhost: router\r\naccept: ${MANIFEST}\r\n\r\n`.repeat(count);
}

/** The router's count of manifest GETs answered 200 (libs/telemetry counts a request once its response closes). */
async function manifestGetsCounted(routerUrl: string): Promise<number> {
  return metric(routerUrl, (line) => line.startsWith('meridian_http_requests_total{') && line.includes('route="manifest"') && line.includes('method="GET"') && line.includes('status="200"'));
}

/** meridian_router_slow_client_buffer_bytes: what the router holds for slow clients now. */
async function heldBytes(routerUrl: string): Promise<number> {
  return metric(routerUrl, (line) => line.startsWith('meridian_router_slow_client_buffer_bytes'));
}

async function metric(routerUrl: string, matches: (line: string) => boolean): Promise<number> {
  const response = await client.request({ origin: routerUrl, path: '/metrics', method: 'GET' });
  const line = (await response.body.text()).split('\n').find(matches);
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

function urlOf(server: http.Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

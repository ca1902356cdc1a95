import net from 'node:net';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type Gateway } from '../../app.js';
import { startTestGateway, type TestGateway } from '../../testing/test-gateway.js';

/**
 * /healthz and /readyz, for orchestrators and load balancers (outside distribution-spec): the
 * process lives, and whether it can serve. Postgres is made unreachable for real, for a second
 * gateway of the region that reaches it through a TCP relay which then stops accepting and cuts
 * what it carries; the blob store fails by losing its root.
 */
let harness: TestGateway;
let relay: Relay;
let relayed: Gateway;
let relayedUrl: string;
const relayedLogs: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  harness = await startTestGateway({}, { captureLogs: true });
  relay = await startRelay(Number(new URL(harness.config.databaseUrl).port || 5432));
  const logger = pino({ level: 'info' }, { write: (line: string) => void relayedLogs.push(JSON.parse(line) as Record<string, unknown>) });
  relayed = await createApp({ ...harness.config, databaseUrl: withPort(harness.config.databaseUrl, relay.port) }, logger);
  relayedUrl = await relayed.listen();
});
afterAll(async () => {
  await relay?.restore();
  await relayed?.close();
  await harness?.close();
  await relay?.close();
});

function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.toString();
}

async function get(pathname: string, method = 'GET', base = harness.url): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${base}${pathname}`, { method });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

describe('/healthz and /readyz', () => {
  it('answer 200 with JSON while everything works, to GET and HEAD, and nothing else', async () => {
    expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await get('/readyz')).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: { ok: true }, blobStore: { ok: true } } },
    });
    expect(await get('/readyz', 'HEAD')).toEqual({ status: 200, body: undefined });
    const post = await fetch(`${harness.url}/readyz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    // Paths beside them are still no route at all.
    expect((await get('/readyz/more')).status).toBe(404);
  });

  it('/readyz answers 503 naming the database while Postgres is unreachable, and 200 once it is back; /healthz stays 200', async () => {
    expect((await get('/readyz', 'GET', relayedUrl)).status).toBe(200);
    await relay.cut();
    const down = await get('/readyz', 'GET', relayedUrl);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ status: 'unavailable', checks: { database: { ok: false }, blobStore: { ok: true } } });
    expect(await get('/healthz', 'GET', relayedUrl)).toEqual({ status: 200, body: { status: 'ok' } });
    // Said once in the log, however often it is asked.
    await get('/readyz', 'GET', relayedUrl);
    expect(relayedLogs.filter((line) => line.level === 50 && line.part === 'database')).toHaveLength(1);

    await relay.restore();
    await expect.poll(async () => (await get('/readyz', 'GET', relayedUrl)).status).toBe(200);
    expect(relayedLogs.some((line) => line.level === 30 && line.part === 'database' && String(line.msg).includes('answers again'))).toBe(true);
  });

  it('/readyz answers 503 naming the blob store while its root is gone, and 200 once it is made again', async () => {
    const root = path.join(harness.config.dataDir, 'store');
    await rm(root, { recursive: true, force: true });
    expect(await get('/readyz')).toEqual({
      status: 503,
      body: { status: 'unavailable', checks: { database: { ok: true }, blobStore: { ok: false, error: "the blob store's root is gone" } } },
    });
    expect(harness.logs.find((line) => line.level === 50 && line.part === 'blobStore')).toMatchObject({ path: root });
    expect((await get('/healthz')).status).toBe(200);
    // A push makes what it needs, the root included.
    await harness.client.pushBlob('health/push', Buffer.from('makes the root again'));
    expect((await get('/readyz')).status).toBe(200);
  });
});

interface Relay {
  port: number;
  /** Stops taking connections and cuts those it carries: Postgres is unreachable. */
  cut(): Promise<void>;
  /** Takes connections again, on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP relay on a free loopback port to 127.0.0.1:`targetPort`. */
async function startRelay(targetPort: number): Promise<Relay> {
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1' });
    open.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      open.delete(client);
      open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop).on('error', drop);
    upstream.on('close', drop).on('error', drop);
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const stop = async () => {
    if (!server.listening) return;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of open) socket.destroy();
    await closed;
  };
  return {
    port,
    cut: stop,
    restore: async () => {
      if (!server.listening) await listen(port);
    },
    close: stop,
  };
}

import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { CHANGE_CHANNEL, ChangeListener, type MetadataChange } from './changes.js';

/**
 * The LISTEN connection that keeps every gateway's cache honest, under faults caused for real:
 * a TCP relay between the listener and Postgres that can go silent without closing (what a NAT
 * or load balancer dropping an idle connection does), and a NOTIFY that is not a change.
 */
let database: TestDatabase;
let admin: pg.Client;

beforeAll(async () => {
  database = await createTestDatabase();
  admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

/** A relay to Postgres whose open connections can be made to swallow everything, both ways. */
async function startRelay(target: URL): Promise<{ port: number; silence(): void; close(): Promise<void> }> {
  const open = new Set<{ client: net.Socket; upstream: net.Socket; silent: boolean }>();
  // Half-open allowed, so a silenced connection does not even answer a FIN: a dead peer.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: Number(target.port || 5432), host: target.hostname, allowHalfOpen: true });
    const pair = { client, upstream, silent: false };
    open.add(pair);
    client.on('data', (chunk) => pair.silent || upstream.write(chunk));
    upstream.on('data', (chunk) => pair.silent || client.write(chunk));
    client.on('end', () => pair.silent || upstream.end());
    upstream.on('end', () => pair.silent || client.end());
    const drop = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop).on('error', drop);
    upstream.on('close', drop).on('error', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    silence: () => {
      for (const pair of open) pair.silent = true;
    },
    close: async () => {
      for (const pair of open) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting until ${what}`);
}

describe('ChangeListener', () => {
  it('notices a connection that went silent without closing, resets, and listens again on a new one', async () => {
    const target = new URL(database.url);
    const relay = await startRelay(target);
    const viaRelay = new URL(database.url);
    viaRelay.hostname = '127.0.0.1';
    viaRelay.port = String(relay.port);
    const events: string[] = [];
    const changes: MetadataChange[] = [];
    const listener = new ChangeListener(
      viaRelay.toString(),
      {
        onChange: (change) => changes.push(change),
        onReset: () => events.push('reset'),
        onListening: () => events.push('listening'),
      },
      { heartbeatMs: 50, heartbeatTimeoutMs: 300 },
    );
    try {
      await listener.start();
      expect(events).toEqual(['listening']);
      relay.silence();
      // No close, no error event: only the missing heartbeat can tell.
      await eventually(() => events.join() === 'listening,reset,listening', 'the listener reset and listened again');
      const change: MetadataChange = { kind: 'tag', repository: 'silent/app', tag: 'v1' };
      await admin.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, JSON.stringify(change)]);
      await eventually(() => changes.length === 1, 'a change reaches the new connection');
      expect(changes).toEqual([change]);
    } finally {
      await listener.stop();
      await relay.close();
    }
  });

  it('stops promptly even when its connection has gone silent', async () => {
    const relay = await startRelay(new URL(database.url));
    const viaRelay = new URL(database.url);
    viaRelay.hostname = '127.0.0.1';
    viaRelay.port = String(relay.port);
    const listener = new ChangeListener(viaRelay.toString(), { onChange: () => undefined, onReset: () => undefined });
    try {
      await listener.start();
      relay.silence();
      // Without a bound, stop() would wait on the silent connection until the relay closes.
      const stopped = listener.stop().then(() => 'stopped');
      const outcome = await Promise.race([stopped, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 4000))]);
      expect(outcome).toBe('stopped');
    } finally {
      await relay.close();
    }
  });

  it('a busy event loop is not taken for a dead connection', async () => {
    const events: string[] = [];
    const listener = new ChangeListener(
      database.url,
      { onChange: () => undefined, onReset: () => events.push('reset'), onListening: () => events.push('listening') },
      { heartbeatMs: 100, heartbeatTimeoutMs: 300 },
    );
    try {
      await listener.start();
      await new Promise((resolve) => setTimeout(resolve, 250));
      // Block the loop past the timeout; the heartbeats keep arriving, unread, meanwhile.
      const until = Date.now() + 600;
      while (Date.now() < until);
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(events).toEqual(['listening']);
    } finally {
      await listener.stop();
    }
  });

  it('ignores a notification that is not a change, instead of giving up caching', async () => {
    const events: string[] = [];
    const changes: MetadataChange[] = [];
    const errors: string[] = [];
    const listener = new ChangeListener(database.url, {
      onChange: (change) => changes.push(change),
      onReset: () => events.push('reset'),
      onListening: () => events.push('listening'),
      onError: (err) => errors.push(err.message),
    });
    try {
      await listener.start();
      for (const payload of ['not json', '42', '{"kind":"tag","repository":"x"}']) {
        await admin.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, payload]);
      }
      const change: MetadataChange = { kind: 'manifest', repository: 'noise/app', digest: `sha256:${'a'.repeat(64)}` };
      await admin.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, JSON.stringify(change)]);
      await eventually(() => changes.length === 1, 'the real change arrives');
      expect(changes).toEqual([change]);
      expect(errors).toHaveLength(3);
      expect(events).toEqual(['listening']);
    } finally {
      await listener.stop();
    }
  });
});

import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CHANNEL_OPTIONS, FLOW_CONTROL_WINDOW_BYTES, ReplicaService, createReplicaClient, grpc, type ReplicaHandlers } from './index.js';

// The replica protocol's HTTP/2 flow-control windows (RFC 9113, section 6.9: SETTINGS_INITIAL_WINDOW_SIZE
// for streams, WINDOW_UPDATE on stream 0 for the connection) are FLOW_CONTROL_WINDOW_BYTES each
// way, not Node's 64 KiB: seen on the wire by a plain node:http2 peer.

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** Waits for `check` to hold; fails naming it after 30 s. */
async function until(check: () => boolean): Promise<void> {
  await vi.waitFor(() => expect(check(), check.toString()).toBe(true), { timeout: 30_000, interval: 5 });
}

describe('replica flow control', () => {
  it('a replica server opens its streams and its connection to a sender with the full window', async () => {
    const server = new grpc.Server(CHANNEL_OPTIONS);
    server.addService(ReplicaService, {} as ReplicaHandlers);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    closers.push(() => void server.forceShutdown());

    const session = http2.connect(`http://127.0.0.1:${port}`);
    closers.push(() => void session.destroy());
    const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
    expect(settings.initialWindowSize).toBe(FLOW_CONTROL_WINDOW_BYTES);
    // The connection's window grows by a WINDOW_UPDATE after the settings.
    await until(() => session.state.remoteWindowSize === FLOW_CONTROL_WINDOW_BYTES);
  });

  it('a replica client opens its streams and its connection to a sender with the full window', async () => {
    const peer = http2.createServer();
    const sessions: http2.ServerHttp2Session[] = [];
    peer.on('session', (session) => sessions.push(session));
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      for (const session of sessions) session.destroy();
      await new Promise((resolve) => peer.close(resolve));
    });

    const client = createReplicaClient(`127.0.0.1:${(peer.address() as AddressInfo).port}`);
    closers.push(() => client.close());
    // Connecting is enough: the client's SETTINGS and WINDOW_UPDATE come before any call.
    client.waitForReady(Date.now() + 30_000, () => undefined);
    await until(() => sessions.length > 0 && sessions[0]!.remoteSettings?.initialWindowSize === FLOW_CONTROL_WINDOW_BYTES);
    await until(() => sessions[0]!.state.remoteWindowSize === FLOW_CONTROL_WINDOW_BYTES);
  });
});

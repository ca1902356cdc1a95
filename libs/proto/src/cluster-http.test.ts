import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClusterHttp } from './cluster-http.js';

// createClusterHttp against a real HTTP server on loopback.

let server: http.Server;
let url: string;
/** The client port of each connection the server took, in the order it took them. */
const accepted: number[] = [];

beforeAll(async () => {
  server = http.createServer((_req, res) => res.end('ok'));
  server.on('connection', (socket: Socket) => accepted.push(socket.remotePort!));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('createClusterHttp', () => {
  it('shows onConnection each connection it opens, connected, before its first request', async () => {
    // Requests the server took, by the client port of their connection.
    const requestsFrom = new Map<number, number>();
    server.on('request', (req: http.IncomingMessage) => requestsFrom.set(req.socket.remotePort!, (requestsFrom.get(req.socket.remotePort!) ?? 0) + 1));
    const shown: Array<{ port: number; connecting: boolean; requestsBefore: number }> = [];
    const clusterHttp = createClusterHttp({ onConnection: (socket) => shown.push({ port: socket.localPort!, connecting: socket.connecting, requestsBefore: requestsFrom.get(socket.localPort!) ?? 0 }) });
    try {
      const get = async () => expect(await (await clusterHttp.fetch(`${url}/`)).text()).toBe('ok');
      await get();
      await Promise.all([get(), get(), get()]);
      expect(accepted.length).toBeGreaterThan(1);
      expect(shown).toEqual(accepted.map((port) => ({ port, connecting: false, requestsBefore: 0 })));
    } finally {
      await clusterHttp.close();
    }
  });
});

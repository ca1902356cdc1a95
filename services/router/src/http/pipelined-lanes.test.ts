/**
 * batchWrites: what the router writes to a pipelined connection in one turn of the event loop
 * leaves in one system call. A real loopback connection: Node writes to a socket at once when
 * the kernel takes the bytes (always so for a few bytes to an idle connection), so bytes still
 * queued in the socket after the writes are bytes held back for the end of the turn.
 */
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { until } from '@meridian/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchWrites } from './pipelined-lanes.js';

let server: net.Server;
const received: Buffer[] = [];
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

describe('batchWrites', () => {
  it('holds the writes of one turn and sends them together when the turn ends, in order', async () => {
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    batchWrites(socket);
    const heads = ['GET /v2/a/manifests/1 HTTP/1.1\r\n\r\n', 'GET /v2/a/manifests/2 HTTP/1.1\r\n\r\n', 'HEAD /v2/ HTTP/1.1\r\n\r\n'];
    for (const head of heads) socket.write(head, 'latin1');
    const total = heads.join('').length;
    expect(socket.writableLength).toBe(total);
    expect(socket.bytesWritten - socket.writableLength).toBe(0);

    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.writableLength).toBe(0);
    await until(() => Buffer.concat(received).length === total, { what: 'the server to receive every head' });
    expect(Buffer.concat(received).toString('latin1')).toBe(heads.join(''));

    // The next turn's writes are held again, and go out at its end.
    received.length = 0;
    socket.write('GET /v2/ HTTP/1.1\r\n\r\n', 'latin1');
    expect(socket.writableLength).toBeGreaterThan(0);
    await until(() => Buffer.concat(received).toString('latin1') === 'GET /v2/ HTTP/1.1\r\n\r\n', { what: 'the server to receive the next head' });
    socket.destroy();
  });
});

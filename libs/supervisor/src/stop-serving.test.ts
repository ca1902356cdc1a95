import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { stopServing } from './stop-serving.js';

// What SIGTERM asks of every service's HTTP server: in-flight requests finish, and then nothing
// holds the process up, however long the server keeps idle connections alive.
describe('stopServing', () => {
  const servers: http.Server[] = [];
  const agents: http.Agent[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.closeAllConnections();
    for (const agent of agents.splice(0)) agent.destroy();
  });

  /** A server whose /slow answers when `release` is called; kept-alive connections idle for a minute. */
  async function serve(): Promise<{ server: http.Server; url: string; arrived: Promise<void>; release: () => void }> {
    let release!: () => void;
    let arrivedNow!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const arrived = new Promise<void>((resolve) => (arrivedNow = resolve));
    const server = http.createServer((req, res) => {
      if (req.url === '/slow') {
        arrivedNow();
        void released.then(() => res.end('done'));
      } else res.end('ok');
    });
    server.keepAliveTimeout = 60_000;
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, arrived, release };
  }

  function get(url: string, agent: http.Agent): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      http
        .get(url, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        })
        .on('error', reject);
    });
  }

  it('lets a request in flight finish, then closes its kept-alive connection without waiting out the keep-alive timeout', async () => {
    const { server, url, arrived, release } = await serve();
    const agent = new http.Agent({ keepAlive: true });
    agents.push(agent);
    // An idle kept-alive connection, and a busy one.
    expect((await get(`${url}/`, agent)).body).toBe('ok');
    const slow = get(`${url}/slow`, agent);
    await arrived;
    const stopped = stopServing(server, 60_000);
    release();
    expect(await slow).toEqual({ status: 200, body: 'done' });
    // Seen failing with server.close() and one closeIdleConnections(): the answered connection
    // went back to waiting for a request and held the stop for the keep-alive minute.
    await stopped;
    expect(server.listening).toBe(false);
  }, 10_000);

  it('cuts a request still unanswered when the grace period ends', async () => {
    const { server, url, arrived } = await serve();
    const agent = new http.Agent({ keepAlive: true });
    agents.push(agent);
    const slow = get(`${url}/slow`, agent).then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code,
    );
    await arrived;
    await stopServing(server, 100);
    expect(await slow).toBe('ECONNRESET');
  }, 10_000);
});

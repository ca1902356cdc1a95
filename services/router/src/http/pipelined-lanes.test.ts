/**
 * PipelinedLanes' own HTTP/1.1 client, against a real loopback server that writes the answers
 * byte for byte as each test has it (what a node:http region would not send: malformed answers,
 * answers cut short, several answers in one packet, one byte per packet).
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createClusterHttp } from '@meridian/proto';
import { until } from '@meridian/testkit';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MalformedAnswerError } from './answer-reader.js';
import { AnswerTimeoutError, PipelinedLanes, type PipelinedLanesOptions, type RawDispatchHandler } from './pipelined-lanes.js';
import { AnswerTooLargeError } from './region-proxy.js';

/** What the server does each time more of a connection's requests have come: `requests` are all of them so far (heads), `n` the connection's number. */
type Script = (socket: net.Socket, requests: string[], n: number) => void;
let script: Script = () => undefined;
let connections = 0;
const sockets = new Set<net.Socket>();

const server = net.createServer((socket) => {
  const n = ++connections;
  sockets.add(socket);
  let text = '';
  let seen = 0;
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    const requests = text.split('\r\n\r\n').slice(0, -1);
    if (requests.length > seen) {
      seen = requests.length;
      script(socket, requests, n);
    }
  });
});

const clusterHttp = createClusterHttp();
const overflow = new Agent();
let lanes: PipelinedLanes | undefined;
let origin = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  lanes?.close();
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  connections = 0;
});
afterAll(async () => {
  await Promise.all([clusterHttp.close(), overflow.close(), new Promise((resolve) => server.close(resolve))]);
});

/** One lane to the server, pipelining up to 8 requests, never stalled. */
function oneLane(options: Partial<PipelinedLanesOptions> = {}): PipelinedLanes {
  lanes = new PipelinedLanes({ connect: clusterHttp.connect, minLanes: 1, maxLanes: 1, depth: 8, stallMs: 3_600_000, timeoutMs: 30_000, overflow, ...options });
  return lanes;
}

interface Answer {
  status?: number;
  headers?: string[];
  body: string;
  error?: Error;
}

/** Sends a request; resolves with its answer, or with what failed it. `onHeaders` may stop it (as RegionProxy's relay does). */
function ask(target: PipelinedLanes, method: string, path: string, headers: string[] = [], stop?: (abort: (reason: Error) => void) => void): Promise<Answer> {
  return new Promise((resolve) => {
    const answer: Answer = { body: '' };
    let abort: (reason: Error) => void = () => undefined;
    const handler: RawDispatchHandler = {
      onConnect: (given) => void (abort = given),
      onHeaders(status, raw) {
        answer.status = status;
        answer.headers = raw.map(String);
        stop?.(abort);
        return true;
      },
      onData(chunk) {
        answer.body += chunk.toString('latin1');
        return true;
      },
      onComplete: () => resolve(answer),
      onError(error) {
        answer.error = error;
        resolve(answer);
      },
    };
    target.dispatch({ origin, path, method: method as 'GET', headers }, handler);
  });
}

const ok = (body: string, more = '') => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${more}\r\n${body}`;

describe('PipelinedLanes', () => {
  it('writes the request heads of one turn together, and reads answers that come back to back in one packet', async () => {
    const target = oneLane();
    const arrived: string[][] = [];
    script = (socket, requests) => {
      arrived.push(requests);
      if (requests.length === 3) socket.write(ok('one', 'X-A: 1\r\n') + ok('two') + ok('three'));
    };
    const answers = await Promise.all(['/v2/a/manifests/1', '/v2/a/manifests/2', '/v2/'].map((path) => ask(target, 'GET', path, ['accept', 'application/json'])));
    expect(answers).toEqual([
      { status: 200, headers: ['Content-Length', '3', 'X-A', '1'], body: 'one' },
      { status: 200, headers: ['Content-Length', '3'], body: 'two' },
      { status: 200, headers: ['Content-Length', '5'], body: 'three' },
    ]);
    // All three heads in the server's first read: one write.
    expect(arrived).toHaveLength(1);
    const host = new URL(origin).host;
    expect(arrived[0]).toEqual([`GET /v2/a/manifests/1 HTTP/1.1\r\nhost: ${host}\r\naccept: application/json`, `GET /v2/a/manifests/2 HTTP/1.1\r\nhost: ${host}\r\naccept: application/json`, `GET /v2/ HTTP/1.1\r\nhost: ${host}\r\naccept: application/json`]);
    expect(connections).toBe(1);
  });

  it('reads no body for a HEAD with a Content-Length, nor for a 304, and the next answer after them', async () => {
    const target = oneLane();
    script = (socket, requests) => {
      if (requests.length === 3) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 614\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 614\r\nETag: "x"\r\n\r\n' + ok('{}'));
    };
    const answers = await Promise.all([ask(target, 'HEAD', '/v2/a/manifests/1'), ask(target, 'GET', '/v2/a/manifests/1'), ask(target, 'GET', '/v2/a/manifests/2')]);
    expect(answers).toEqual([
      { status: 200, headers: ['Content-Length', '614'], body: '' },
      { status: 304, headers: ['Content-Length', '614', 'ETag', '"x"'], body: '' },
      { status: 200, headers: ['Content-Length', '2'], body: '{}' },
    ]);
  });

  it('decodes a chunked body with extensions and trailers sent one byte per packet', async () => {
    const target = oneLane();
    script = (socket) => {
      socket.setNoDelay(true);
      const text = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\n{"s\r\nc ; x="y"\r\nchemaVersion\r\n3\r\n":2\r\n1\r\n}\r\n0\r\nDigest: x\r\n\r\n';
      const send = (at: number) => {
        if (at === text.length) return;
        socket.write(text[at]!, 'latin1', () => setImmediate(() => send(at + 1)));
      };
      send(0);
    };
    expect(await ask(target, 'GET', '/v2/a/manifests/1')).toEqual({ status: 200, headers: ['Transfer-Encoding', 'chunked'], body: '{"schemaVersion":2}' });
  });

  it('fails the request with a malformed answer, and sends the ones behind it again on a new connection', async () => {
    const target = oneLane();
    script = (socket, requests, n) => {
      if (n === 1 && requests.length === 2) socket.write('HTTP/1.1 OK 200\r\n\r\n');
      if (n === 2) socket.write(ok('again'));
    };
    const [bad, next] = await Promise.all([ask(target, 'GET', '/v2/a/manifests/1'), ask(target, 'GET', '/v2/a/manifests/2')]);
    expect(bad.error).toBeInstanceOf(MalformedAnswerError);
    expect(next).toEqual({ status: 200, headers: ['Content-Length', '5'], body: 'again' });
    expect(connections).toBe(2);
  });

  it('fails a request whose connection closes in the middle of its answer, and sends the one behind it again', async () => {
    const target = oneLane();
    script = (socket, requests, n) => {
      if (n === 1 && requests.length === 2) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf of it');
      if (n === 2) socket.write(ok('whole'));
    };
    const [cut, next] = await Promise.all([ask(target, 'GET', '/v2/a/manifests/1'), ask(target, 'GET', '/v2/a/manifests/2')]);
    expect(cut.error).toBeInstanceOf(MalformedAnswerError);
    expect(cut.body).toBe('half of it');
    expect(next).toEqual({ status: 200, headers: ['Content-Length', '5'], body: 'whole' });
  });

  it('stops an answer its handler refuses (one larger than a manifest may be) and goes on with the next on a new connection', async () => {
    const target = oneLane();
    script = (socket, requests, n) => {
      if (n === 1 && requests.length === 2) socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${5 * 2 ** 20}\r\n\r\nxxxx`);
      if (n === 2) socket.write(ok('next'));
    };
    const tooLarge = ask(target, 'GET', '/v2/a/manifests/1', [], (abort) => abort(new AnswerTooLargeError(4 * 2 ** 20)));
    const [refused, next] = await Promise.all([tooLarge, ask(target, 'GET', '/v2/a/manifests/2')]);
    expect(refused.error).toBeInstanceOf(AnswerTooLargeError);
    expect(refused.body).toBe('');
    expect(next).toEqual({ status: 200, headers: ['Content-Length', '4'], body: 'next' });
  });

  it('sends again, on a new connection, the requests a connection closed before answering, with Connection: close or without a word', async () => {
    const target = oneLane();
    script = (socket, requests, n) => {
      if (n === 1 && requests.length === 3) socket.write(ok('1', 'Connection: close\r\n'));
      if (n === 2 && requests.length === 2) socket.end(ok('2'));
      if (n === 3) socket.write(ok('3'));
    };
    const answers = await Promise.all([1, 2, 3].map((i) => ask(target, 'GET', `/v2/a/manifests/${i}`)));
    expect(answers.map((answer) => answer.body)).toEqual(['1', '2', '3']);
    expect(connections).toBe(3);
  });

  it('fails a request no answer comes for within the timeout', async () => {
    const target = oneLane({ timeoutMs: 200 });
    script = () => undefined;
    const answer = await ask(target, 'GET', '/v2/a/manifests/1');
    expect(answer.error).toBeInstanceOf(AnswerTimeoutError);
  });

  it('fails the requests still in flight when it is closed, and opens no connection again', async () => {
    const target = oneLane();
    let arrived = 0;
    script = (_socket, requests) => void (arrived = requests.length);
    const pending = ask(target, 'GET', '/v2/a/manifests/1');
    await until(() => arrived === 1, { what: 'the request to reach the server' });
    target.close();
    expect((await pending).error).toBeInstanceOf(Error);
    expect(connections).toBe(1);
  });

  it('fails its requests when the region cannot be reached', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const target = oneLane();
    const failed = await new Promise<Error>((resolve) =>
      target.dispatch(
        { origin: `http://127.0.0.1:${port}`, path: '/v2/', method: 'GET', headers: [] },
        { onConnect: () => undefined, onHeaders: () => true, onData: () => true, onComplete: () => resolve(new Error('answered')), onError: resolve },
      ),
    );
    expect((failed as Error & { code?: string }).code).toBe('ECONNREFUSED');
  });
});

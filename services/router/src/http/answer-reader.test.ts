/**
 * AnswerReader: HTTP/1.1 answers (RFC 9112) read from bytes however they are cut. The bytes are
 * whole answers as a region writes them on a pipelined connection; every way of cutting them in
 * two is read, and must give the same answers.
 */
import { describe, expect, it } from 'vitest';
import { AnswerReader, MalformedAnswerError, type AnswerSink } from './answer-reader.js';

interface Read {
  status: number;
  statusText: string;
  headers: string[];
  body: string;
  close?: boolean;
}

/** Reads `pieces` in turn; `bodyless(n)`: the n-th answer is to a HEAD. */
function read(pieces: Buffer[], bodyless: (n: number) => boolean = () => false): { answers: Read[]; error?: unknown } {
  const answers: Read[] = [];
  let current: Read | undefined;
  const sink: AnswerSink = {
    head(status, statusText, headers) {
      current = { status, statusText, headers, body: '' };
      return !bodyless(answers.length);
    },
    data(chunk) {
      current!.body += chunk.toString('latin1');
    },
    end(close) {
      answers.push({ ...current!, ...(close ? { close } : {}) });
      current = undefined;
    },
  };
  const reader = new AnswerReader(sink);
  try {
    for (const piece of pieces) reader.push(piece);
    return { answers };
  } catch (error) {
    return { answers, error };
  }
}

const bytes = (text: string) => Buffer.from(text, 'latin1');

/** Every way of cutting `text` in two (and not at all), each read from the start. */
function everySplit(text: string, bodyless?: (n: number) => boolean): Array<{ answers: Read[]; error?: unknown }> {
  const all = bytes(text);
  const reads = [read([all], bodyless)];
  for (let at = 1; at < all.length; at++) reads.push(read([all.subarray(0, at), all.subarray(at)], bodyless));
  return reads;
}

const MANIFEST = '{"schemaVersion":2}';
const PIPELINED =
  `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${MANIFEST.length}\r\nDocker-Content-Digest: sha256:abc\r\n\r\n${MANIFEST}` +
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;other="quoted"\r\nhello\r\n7 ;ext\r\n, world\r\n0\r\nChecksum: 1\r\nOther: 2\r\n\r\n' +
  'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 614\r\n\r\n' +
  'HTTP/1.1 200 OK\r\nContent-Length: 614\r\n\r\n' +
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-Empty:\r\n\r\n' +
  'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: keep-alive, close\r\n\r\n{}';

describe('AnswerReader', () => {
  it('reads answers back to back, cut anywhere: Content-Length, chunked with extensions and trailers, 304, HEAD, 1xx, 204, Connection: close', () => {
    // The fourth answer is to a HEAD: its Content-Length is the GET's, with no body.
    const expected: Read[] = [
      { status: 200, statusText: 'OK', headers: ['Content-Type', 'application/json', 'Content-Length', String(MANIFEST.length), 'Docker-Content-Digest', 'sha256:abc'], body: MANIFEST },
      { status: 200, statusText: 'OK', headers: ['Transfer-Encoding', 'chunked'], body: 'hello, world' },
      { status: 304, statusText: 'Not Modified', headers: ['ETag', '"x"', 'Content-Length', '614'], body: '' },
      { status: 200, statusText: 'OK', headers: ['Content-Length', '614'], body: '' },
      { status: 204, statusText: 'No Content', headers: ['X-Empty', ''], body: '' },
      { status: 404, statusText: 'Not Found', headers: ['Content-Length', '2', 'Connection', 'keep-alive, close'], body: '{}', close: true },
    ];
    for (const result of everySplit(PIPELINED, (n) => n === 3)) expect(result).toEqual({ answers: expected });
  });

  it('reads a body without a length to the close of the connection', () => {
    const answers: string[] = [];
    let body = '';
    const reader = new AnswerReader({ head: () => true, data: (chunk) => void (body += chunk.toString()), end: (close) => void answers.push(`${body} ${close}`) });
    reader.push(bytes('HTTP/1.1 200 OK\r\n\r\nall of'));
    reader.push(bytes(' it'));
    expect(answers).toEqual([]);
    reader.closed();
    expect(answers).toEqual(['all of it true']);
  });

  it('refuses an answer cut short by the close of the connection, in its head, its body or a chunk', () => {
    for (const cut of ['HTTP/1.1 200 OK\r\nContent-Le', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel']) {
      const reader = new AnswerReader({ head: () => true, data: () => undefined, end: () => expect.fail('no answer is complete') });
      reader.push(bytes(cut));
      expect(() => reader.closed()).toThrow(MalformedAnswerError);
    }
  });

  it('refuses what is not an answer, wherever it is cut', () => {
    const malformed = [
      'HTTP/1.1 2000 OK\r\n\r\n',
      'HTTP/2 200 OK\r\n\r\n',
      'SMTP ready\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\n folded: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n',
      'HTTP/1.1 101 Switching Protocols\r\n\r\n',
    ];
    for (const text of malformed) {
      for (const result of everySplit(text)) {
        expect(result.answers, text).toEqual([]);
        expect(result.error, text).toBeInstanceOf(MalformedAnswerError);
      }
    }
  });

  it('refuses a head larger than 64 KiB before it has all of it', () => {
    const reader = new AnswerReader({ head: () => true, data: () => undefined, end: () => undefined });
    reader.push(bytes('HTTP/1.1 200 OK\r\n'));
    const line = bytes(`X-Filler: ${'x'.repeat(1000)}\r\n`);
    let pushed = 0;
    expect(() => {
      for (; pushed < 100; pushed++) reader.push(line);
    }).toThrow(MalformedAnswerError);
    expect(pushed).toBeLessThan(70);
  });
});

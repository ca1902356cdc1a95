/**
 * A region's answer that is not HTTP/1.1 as RFC 9112 has it (a bad status line, header line,
 * length or chunk), or whose head is larger than any the router takes: its connection cannot be
 * read any further.
 */
export class MalformedAnswerError extends Error {
  override name = 'MalformedAnswerError';
}

/** What an AnswerReader finds, answer after answer, in the order they come. */
export interface AnswerSink {
  /**
   * The head of the next final answer (1xx answers are skipped). `headers` are the header lines as
   * `[name, value, ...]`, names as sent, values as latin1 (byte for byte). Returns whether the
   * answer has a body by its headers: false for the answer to a HEAD (RFC 9110 §9.3.2).
   */
  head(status: number, statusText: string, headers: string[]): boolean;
  /** A piece of the body (chunked bodies decoded). Subarrays of what was pushed: not copied. */
  data(chunk: Buffer): void;
  /** The answer is complete. `close`: the region closes the connection after it (`Connection: close`, or HTTP/1.0 without keep-alive). */
  end(close: boolean): void;
}

/** The most a status line and its header lines may take together: a manifest's answer has a dozen short ones. */
const MAX_HEAD_BYTES = 64 * 1024;
/** The most a chunk-size line (with extensions) or a trailer line may take. */
const MAX_LINE_BYTES = 4096;

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/;
/** RFC 9110 §5.6.2 token characters, for header names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?$/;
const DIGITS = /^[0-9]{1,15}$/;

/**
 * Reads the answers of an HTTP/1.1 connection (RFC 9112) from its bytes as they come, in any
 * pieces: status line and header lines, then a body framed by Content-Length, by chunked transfer
 * coding (decoded; extensions and trailers read and dropped) or by the connection's close; none
 * for 1xx, 204, 304, or when the sink says (HEAD). Throws MalformedAnswerError on bytes that are
 * not an answer; after that, and after `closed`, it reads nothing more.
 */
export class AnswerReader {
  private state = State.Head;
  /** Bytes of an unfinished head or line, kept until the rest comes. */
  private partial: Buffer | undefined;
  /** Body bytes still to come: of a Content-Length body, or of the current chunk. */
  private remaining = 0;
  private closeAfter = false;
  private dead = false;

  constructor(private readonly sink: AnswerSink) {}

  /** Whether an answer has been started (any of its bytes read) and not finished. */
  get answering(): boolean {
    return this.state !== State.Head || this.partial !== undefined;
  }

  /** Reads no more: what is pushed after is dropped (the connection was given up). */
  stop(): void {
    this.dead = true;
    this.partial = undefined;
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial !== undefined) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let at = 0;
    try {
      while (at < buf.length && !this.dead) at = this.step(buf, at);
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  /**
   * The connection closed: completes an answer whose body runs to the close. Throws
   * MalformedAnswerError if an answer was cut short.
   */
  closed(): void {
    if (this.dead) return;
    const state = this.state;
    const cut = this.answering && state !== State.UntilClose;
    this.stop();
    if (state === State.UntilClose) this.sink.end(true);
    else if (cut) throw new MalformedAnswerError('the connection closed in the middle of an answer');
  }

  /** Reads what it can from `buf` at `at`; returns where it stopped. */
  private step(buf: Buffer, at: number): number {
    switch (this.state) {
      case State.Head:
        return this.readHead(buf, at);
      case State.Length: {
        const end = Math.min(buf.length, at + this.remaining);
        this.remaining -= end - at;
        if (end > at) this.sink.data(buf.subarray(at, end));
        if (this.remaining === 0) this.finish();
        return end;
      }
      case State.ChunkSize: {
        const line = this.line(buf, at);
        if (line === undefined) return buf.length;
        const match = CHUNK_SIZE.exec(line.text);
        if (!match) throw new MalformedAnswerError(`a bad chunk size line: ${JSON.stringify(line.text.slice(0, 40))}`);
        this.remaining = Number.parseInt(match[1]!, 16);
        this.state = this.remaining === 0 ? State.Trailers : State.ChunkData;
        return line.next;
      }
      case State.ChunkData: {
        const end = Math.min(buf.length, at + this.remaining);
        this.remaining -= end - at;
        if (end > at) this.sink.data(buf.subarray(at, end));
        if (this.remaining === 0) this.state = State.ChunkDataEnd;
        return end;
      }
      case State.ChunkDataEnd: {
        const line = this.line(buf, at);
        if (line === undefined) return buf.length;
        if (line.text !== '') throw new MalformedAnswerError('a chunk longer than its size');
        this.state = State.ChunkSize;
        return line.next;
      }
      case State.Trailers: {
        const line = this.line(buf, at);
        if (line === undefined) return buf.length;
        if (line.text === '') this.finish();
        return line.next;
      }
      case State.UntilClose:
        this.sink.data(at === 0 ? buf : buf.subarray(at));
        return buf.length;
    }
  }

  /** One CRLF-ended line from `at`, or undefined (the start kept) until its end comes. */
  private line(buf: Buffer, at: number): { text: string; next: number } | undefined {
    const end = buf.indexOf('\r\n', at, 'latin1');
    if (end < 0) {
      if (buf.length - at > MAX_LINE_BYTES) throw new MalformedAnswerError('a chunk size or trailer line too long');
      this.partial = buf.subarray(at);
      return undefined;
    }
    if (end - at > MAX_LINE_BYTES) throw new MalformedAnswerError('a chunk size or trailer line too long');
    return { text: buf.toString('latin1', at, end), next: end + 2 };
  }

  private readHead(buf: Buffer, at: number): number {
    const end = buf.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) {
      if (buf.length - at > MAX_HEAD_BYTES) throw new MalformedAnswerError(`an answer head over ${MAX_HEAD_BYTES} bytes`);
      this.partial = buf.subarray(at);
      return buf.length;
    }
    if (end - at > MAX_HEAD_BYTES) throw new MalformedAnswerError(`an answer head over ${MAX_HEAD_BYTES} bytes`);
    const lines = buf.toString('latin1', at, end).split('\r\n');
    const status = STATUS_LINE.exec(lines[0]!);
    if (!status) throw new MalformedAnswerError(`a bad status line: ${JSON.stringify(lines[0]!.slice(0, 40))}`);
    const code = Number(status[2]);
    const headers: string[] = [];
    let length = -1;
    let chunked = false;
    let connection = '';
    for (let i = 1; i < lines.length; i++) {
      const text = lines[i]!;
      const colon = text.indexOf(':');
      const name = colon > 0 ? text.slice(0, colon) : '';
      if (!TOKEN.test(name)) throw new MalformedAnswerError(`a bad header line: ${JSON.stringify(text.slice(0, 40))}`);
      const value = text.slice(colon + 1).trim();
      headers.push(name, value);
      // Only these few names matter to the framing; compared by length first, lower-cased only then.
      if (name.length === 14 && name.toLowerCase() === 'content-length') {
        if (!DIGITS.test(value) || (length >= 0 && Number(value) !== length)) throw new MalformedAnswerError(`a bad Content-Length: ${JSON.stringify(value.slice(0, 40))}`);
        length = Number(value);
      } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
        const codings = value.toLowerCase().split(',');
        if (codings[codings.length - 1]!.trim() !== 'chunked') throw new MalformedAnswerError(`a transfer coding other than chunked last: ${JSON.stringify(value.slice(0, 40))}`);
        chunked = true;
      } else if (name.length === 10 && name.toLowerCase() === 'connection') {
        connection += `,${value.toLowerCase()}`;
      }
    }
    // RFC 9112 §6.1: both would let a region and the router disagree on where the answer ends.
    if (chunked && length >= 0) throw new MalformedAnswerError('both Transfer-Encoding and Content-Length');
    const next = end + 4;
    if (code < 200) {
      // 101 would switch protocols, which the router never asks for.
      if (code === 101) throw new MalformedAnswerError('101 Switching Protocols, never asked for');
      return next;
    }
    // What a region sends on every answer of a kept-alive connection, read without splitting.
    if (connection === ',keep-alive') this.closeAfter = false;
    else {
      const tokens = connection.split(',').map((token) => token.trim());
      this.closeAfter = tokens.includes('close') || (status[1] === '0' && !tokens.includes('keep-alive'));
    }
    const hasBody = this.sink.head(code, status[3] ?? '', headers);
    if (this.dead) return next;
    if (!hasBody || code === 204 || code === 304 || length === 0) this.finish();
    else if (chunked) this.state = State.ChunkSize;
    else if (length > 0) {
      this.state = State.Length;
      this.remaining = length;
    } else {
      this.state = State.UntilClose;
      this.closeAfter = true;
    }
    return next;
  }

  private finish(): void {
    this.state = State.Head;
    const close = this.closeAfter;
    this.closeAfter = false;
    if (close) this.stop();
    this.sink.end(close);
  }
}

import type { Request } from 'express';
import {
  BlobRangeNotSatisfiableError,
  ManifestTooLargeError,
  SizeInvalidError,
  UploadRangeInvalidError,
} from '@meridian/oci';

/** A single query parameter's value; repeated parameters count as absent-and-wrong. */
export function queryValue(req: Request, name: string): string | undefined {
  const value = req.query[name];
  return typeof value === 'string' ? value : undefined;
}

/** Content-Length as a number, or undefined for a chunked body; SIZE_INVALID when malformed. */
export function contentLength(req: Request): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  if (!/^\d{1,15}$/.test(header)) throw new SizeInvalidError(`invalid Content-Length ${header.slice(0, 40)}`);
  return Number(header);
}

/** True when the request carries body bytes (a length above zero, or chunked encoding). */
export function hasBody(req: Request): boolean {
  const length = contentLength(req);
  return length === undefined ? req.headers['transfer-encoding'] !== undefined : length > 0;
}

/**
 * A blob GET's `Range: bytes=a-b | bytes=a- | bytes=-n` (RFC 9110 §14.1.2), resolved against the
 * blob's size to an inclusive range. Other units and several ranges are ignored (the whole blob
 * is answered, as RFC 9110 allows); a malformed or unsatisfiable byte range is 416 with
 * `Content-Range: bytes * /size` (RFC 9110 lets a server reject an invalid ranges-specifier).
 */
export function parseBlobRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  // A unit other than bytes must be ignored (RFC 9110 §14.2), and several ranges are not served.
  if (!/^\s*bytes=/i.test(header) || header.includes(',')) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/i.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) throw new BlobRangeNotSatisfiableError(size);
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) throw new BlobRangeNotSatisfiableError(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) throw new BlobRangeNotSatisfiableError(size);
  return { start, end };
}

/**
 * A chunk's `Content-Range`. distribution-spec v1.1 writes it `<start>-<end>` (inclusive); some
 * clients send the RFC form `bytes <start>-<end>/<total|*>`; both are accepted.
 */
export function parseChunkRange(header: string | undefined): { start: number; length: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:bytes )?(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?$/.exec(header.trim());
  if (!match) throw new UploadRangeInvalidError(`malformed Content-Range ${header.slice(0, 60)}`);
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) throw new UploadRangeInvalidError(`Content-Range ${header} ends before it starts`);
  return { start, length: end - start + 1 };
}

/** Requests whose body is being read and thrown away (see `discardRest`). */
const bodiesBeingDiscarded = new WeakSet<Request>();

/**
 * Whether the rest of the request's body is being read and dropped: its connection stays usable
 * once the body ends, so an error answer must not close it.
 */
export function isDiscardingBody(req: Request): boolean {
  return bodiesBeingDiscarded.has(req);
}

/** How much of an over-limit body is read and thrown away so the client can see the 413, and for how long. */
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;
const DISCARD_LIMIT_MS = 10_000;

/**
 * Reads a small body (a manifest) whole, refusing it before reading when Content-Length is over
 * `limit`, and as soon as more than `limit` bytes have arrived when it is chunked. A refused
 * body is read on and dropped (`discardRest`), or, when its declared length is past what is
 * worth reading, its connection is closed after the answer (`closeAfterAnswer`).
 */
export function readBoundedBody(req: Request, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) {
    if (declared <= DISCARD_LIMIT_BYTES) discardRest(req);
    else closeAfterAnswer(req);
    return Promise.reject(new ManifestTooLargeError(`body of ${declared} bytes exceeds the limit of ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= limit) {
        chunks.push(chunk);
        return;
      }
      stop();
      discardRest(req);
      reject(new ManifestTooLargeError(`body exceeds the limit of ${limit} bytes`));
    };
    const onEnd = () => {
      stop();
      if (declared !== undefined && received !== declared) {
        reject(new SizeInvalidError(`body has ${received} bytes, Content-Length said ${declared}`));
      } else {
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
      }
    };
    const onError = (err: Error) => {
      stop();
      reject(err);
    };
    // A client gone before the end: no 'end' comes, and maybe no 'error' either.
    const onClose = () => {
      stop();
      reject(new Error('the client closed the request before its body ended'));
    };
    const stop = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
    };
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/**
 * Keeps reading an over-limit body and throws it away, as Go's HTTP server does: a connection
 * closed with unread bytes is reset, and the reset can reach the client before the 413 does (a
 * client that writes its whole body before reading sees only a failed write). Once the rest is
 * read the connection stays usable.
 */
function discardRest(req: Request): void {
  bodiesBeingDiscarded.add(req);
  drain(req);
}

/**
 * For a body declared longer than DISCARD_LIMIT_BYTES, which will not be read to its end: the
 * answer says `Connection: close` (the error handler adds it, since the body is incomplete). For
 * such an answer node:http calls `socket.destroySoon()`, which destroys the socket as soon as the
 * answer and the FIN are written; with body bytes still unread that close is a reset, which fails
 * the client's pending write and may discard the answer still queued on either side (TCP, RFC
 * 9293, flushes the segment queues on a reset; Linux keeps what it had received). So the close
 * lingers: the FIN follows the answer, the body is drained within the same bounds as a discarded
 * one, and the socket closes once the client has closed its side too (or a bound is reached).
 */
function closeAfterAnswer(req: Request): void {
  const socket = req.socket;
  // node:http sockets allow half-open connections: with both sides ended, the socket destroys itself.
  socket.destroySoon = () => void socket.end();
  drain(req);
}

/** Reads the rest of a refused body and drops it; past DISCARD_LIMIT_BYTES or DISCARD_LIMIT_MS the connection is cut. */
function drain(req: Request): void {
  const socket = req.socket;
  let discarded = 0;
  // A client trickling the rest would hold the connection for as long as it likes.
  const cutOff = setTimeout(() => socket.destroy(), DISCARD_LIMIT_MS);
  cutOff.unref();
  const stop = () => clearTimeout(cutOff);
  req.once('end', stop).once('close', stop);
  socket.once('close', stop);
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) socket.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}

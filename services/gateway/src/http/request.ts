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
 * `limit`, and as soon as more than `limit` bytes have arrived when it is chunked.
 */
export function readBoundedBody(req: Request, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) {
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
 * closed with unread bytes is reset, and the reset can reach the client before the 413 does.
 * Once the rest is read the connection stays usable; a body that goes on past
 * DISCARD_LIMIT_BYTES, or takes longer than DISCARD_LIMIT_MS, is cut off.
 */
function discardRest(req: Request): void {
  bodiesBeingDiscarded.add(req);
  let discarded = 0;
  // A client trickling the rest would hold the connection for as long as it likes.
  const cutOff = setTimeout(() => req.destroy(), DISCARD_LIMIT_MS);
  cutOff.unref();
  req.once('end', () => clearTimeout(cutOff)).once('close', () => clearTimeout(cutOff));
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) req.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}

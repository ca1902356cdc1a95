import type { BlobChunk } from './generated/meridian/replica/v1/BlobChunk.js';

/** Protobuf wire keys of BlobChunk's fields (replica.proto): field number << 3 | wire type. */
const DATA_KEY = (1 << 3) | 2;
const SIZE_KEY = (2 << 3) | 0;

/**
 * GetBlob's reply serialiser: BlobChunk's protobuf bytes as a list (a small header, the data, the
 * size field), the data being the very memory the caller wrote, not a copy. The generated
 * serialiser copied every byte of a blob into a new message, and grpc-js copied that again to
 * put its 5-byte frame header in front: two allocations and two copies of each byte a source
 * sends, half of its CPU for a large layer. With the project's grpc-js patch
 * (patches/@grpc__grpc-js@*.patch) a server sends such a list as it is, behind its frame header.
 * The caller must leave the data untouched until the write's callback, as a stream's writer
 * must anyway. Anything but bytes and an integer size goes to `fallback`.
 */
export function serializeBlobChunk(chunk: BlobChunk, fallback: (chunk: BlobChunk) => Buffer): Buffer[] | Buffer {
  const { data, size } = chunk;
  const count = size === undefined || size === '' ? 0 : Number(size);
  if (!(data instanceof Uint8Array) || !Number.isSafeInteger(count) || count < 0) return fallback(chunk);
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const head = Buffer.allocUnsafe(11);
  head[0] = DATA_KEY;
  const parts: Buffer[] = [head.subarray(0, 1 + writeVarint(head, 1, bytes.length))];
  if (bytes.length > 0) parts.push(bytes);
  if (count > 0) {
    const tail = Buffer.allocUnsafe(9);
    tail[0] = SIZE_KEY;
    parts.push(tail.subarray(0, 1 + writeVarint(tail, 1, count)));
  }
  return parts;
}

/** Writes `value` (a safe non-negative integer) as a protobuf varint at `offset`; returns its length. */
function writeVarint(target: Buffer, offset: number, value: number): number {
  let at = offset;
  while (value >= 0x80) {
    target[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  target[at++] = value;
  return at - offset;
}

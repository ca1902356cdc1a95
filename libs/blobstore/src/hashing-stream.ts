import { Transform, type TransformCallback } from 'node:stream';
import type { Hash } from 'node:crypto';
import { SizeInvalidError } from '@meridian/oci';

/**
 * Passes bytes through unchanged while feeding them to a hash and counting them, so a blob is
 * hashed as it flows and never held whole. Fails as soon as more than `maxBytes` arrive, so a
 * client lying about a length cannot fill the disk first.
 */
export class HashingStream extends Transform {
  bytes = 0;

  constructor(
    readonly hash: Hash,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly tooLong: (message: string) => Error = (message) => new SizeInvalidError(message),
  ) {
    // Room for a few socket reads, so hashing never throttles the flow to the disk writer.
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(this.tooLong(`body is longer than the ${this.maxBytes} bytes declared`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }
}

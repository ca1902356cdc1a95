import { EventEmitter } from 'node:events';
import type { BlobChunk__Output, grpc } from '@meridian/proto';
import type { ReplicaPeer } from './replica-peer.js';

/** What a copy is handed: a blob's bytes from its offset, the first piece saying the blob's size. */
export interface BlobPiece {
  data: Buffer;
  size: string;
}

/**
 * A blob's bytes as one copy reads them, from the offset it asked for: 'data' (BlobPiece), then
 * 'end', or 'error' with the source's failure. Paused, it holds its read back; cancelled, it
 * leaves it. The same surface as a GetBlob call, which is what it stands for.
 */
export class BlobTap extends EventEmitter {
  /** The next byte of the blob this copy needs. */
  offset: number;
  paused = false;
  /** Behind the shared read: getting the bytes it missed from a GetBlob of its own. */
  catchUp: grpc.ClientReadableStream<BlobChunk__Output> | undefined;
  sizeSent = false;
  left = false;

  constructor(
    offset: number,
    private readonly read: SharedRead,
  ) {
    super();
    this.offset = offset;
  }

  pause(): void {
    this.paused = true;
    this.catchUp?.pause();
    this.read.flow();
  }

  resume(): void {
    this.paused = false;
    this.catchUp?.resume();
    this.read.flow();
  }

  cancel(): void {
    this.read.leave(this);
  }

  /** Hands on the bytes of `data`, which starts at byte `start` of the blob, from this copy's offset on. */
  take(data: Buffer, start: number, size: string): void {
    const end = start + data.length;
    if (this.left || end < this.offset || (end === this.offset && this.sizeSent)) return;
    const piece = data.subarray(this.offset - start);
    this.offset = end;
    this.sizeSent = true;
    this.emit('data', { data: piece, size } satisfies BlobPiece);
  }
}

/**
 * Reads of blobs from source regions, shared by the copies of this process that need the same
 * blob from the same source at the same time: the jobs of one change for its target regions
 * each copy the change's blobs to their own region, and with one read between them the source
 * reads and sends a layer, and this process receives it, once rather than once per target.
 *
 * A copy joins a read under way whatever its offset (what its target already holds). Ahead of
 * the read, it is handed the bytes from its offset on as they pass. Behind it, it gets the bytes
 * it missed from a GetBlob of its own, which stops where the read stands, while the read waits.
 * The read keeps flow control whole: it pauses while any of its copies' targets has not taken
 * the last piece, so it goes at the pace of its slowest target, and holds no more than one
 * copy would. A copy that ends early (its target failed, its job was cancelled) leaves; the
 * read stops once none is left. A source that fails fails every copy of the read, and each goes
 * on to its next source as it would alone.
 */
export class SharedReads {
  private readonly reads = new Map<string, SharedRead>();

  /** The blob `digest` from `source`, from byte `offset`: in a read under way, or a new one. */
  open(source: ReplicaPeer, digest: string, offset: number): BlobTap {
    const key = `${source.name} ${source.address} ${digest}`;
    let read = this.reads.get(key);
    if (!read?.joinable) {
      read = new SharedRead(source, digest, offset, () => {
        if (this.reads.get(key) === read) this.reads.delete(key);
      });
      this.reads.set(key, read);
    }
    return read.join(offset);
  }

  /** Reads under way, for tests and logs. */
  get size(): number {
    return this.reads.size;
  }

  /** Copies reading through the reads under way, for tests and logs. */
  get copies(): number {
    return [...this.reads.values()].reduce((sum, read) => sum + read.copies, 0);
  }
}

/** One GetBlob feeding the copies that joined it (see SharedReads). */
class SharedRead {
  private readonly taps = new Set<BlobTap>();
  private readonly call: grpc.ClientReadableStream<BlobChunk__Output>;
  /** The blob's byte the call delivers next. */
  private position: number;
  /** The blob's size, as the source's first message says it. */
  private size: string | undefined;
  private finished = false;
  private ended = false;

  constructor(
    private readonly source: ReplicaPeer,
    private readonly digest: string,
    offset: number,
    private readonly onDone: () => void,
  ) {
    this.position = offset;
    // Any copy the source holds will do, whatever repository it is in: the target verifies the bytes against the digest.
    this.call = source.getBlob({ digest, offset, repository: '' });
    this.call.on('data', (message: BlobChunk__Output) => this.deliver(message));
    this.call.on('end', () => {
      this.ended = true;
      this.finish();
      for (const tap of [...this.taps]) if (!tap.catchUp) this.endTap(tap);
    });
    this.call.on('error', (err) => {
      this.finish();
      for (const tap of [...this.taps]) this.failTap(tap, err);
    });
  }

  get copies(): number {
    return this.taps.size;
  }

  /** Whether a copy may still join: the read has neither ended nor failed. */
  get joinable(): boolean {
    return !this.finished;
  }

  join(offset: number): BlobTap {
    const tap = new BlobTap(offset, this);
    this.taps.add(tap);
    if (offset < this.position) this.startCatchUp(tap);
    this.flow();
    return tap;
  }

  leave(tap: BlobTap): void {
    if (tap.left) return;
    tap.left = true;
    this.stopCatchUp(tap);
    this.taps.delete(tap);
    if (this.taps.size === 0) {
      this.finish();
      this.call.cancel();
      return;
    }
    this.flow();
  }

  /** The call runs while every copy has room and none is catching up; else it waits. */
  flow(): void {
    if (this.finished) return;
    const held = [...this.taps].some((tap) => tap.paused || tap.catchUp !== undefined);
    if (held) this.call.pause();
    else this.call.resume();
  }

  private deliver(message: BlobChunk__Output): void {
    this.size ??= message.size;
    const start = this.position;
    this.position += message.data.length;
    for (const tap of [...this.taps]) if (!tap.catchUp) tap.take(message.data, start, this.size);
  }

  /** Sends `tap` the bytes from its offset to where the read stands, from a GetBlob of its own. */
  private startCatchUp(tap: BlobTap): void {
    const until = this.position;
    const call = this.source.getBlob({ digest: this.digest, offset: tap.offset, repository: '' });
    tap.catchUp = call;
    let at = tap.offset;
    call.on('data', (message: BlobChunk__Output) => {
      if (tap.catchUp !== call) return;
      const data = message.data.subarray(0, until - at);
      tap.take(data, at, message.size);
      at += data.length;
      if (at < until) return;
      this.stopCatchUp(tap);
      if (this.ended) this.endTap(tap);
      this.flow();
    });
    call.on('end', () => {
      if (tap.catchUp === call) this.failTap(tap, new Error(`${this.source.name} ended ${this.digest} at ${at} bytes, before ${until}`));
    });
    call.on('error', (err) => {
      if (tap.catchUp === call) this.failTap(tap, err);
    });
    if (tap.paused) call.pause();
  }

  /** Cancels `tap`'s own GetBlob, forgotten first so that the cancellation's error is not taken for a failure. */
  private stopCatchUp(tap: BlobTap): void {
    const call = tap.catchUp;
    tap.catchUp = undefined;
    call?.cancel();
  }

  private endTap(tap: BlobTap): void {
    if (tap.left) return;
    // A copy whose offset is the blob's end has had nothing yet: it still learns the size.
    if (!tap.sizeSent && this.size !== undefined) tap.take(Buffer.alloc(0), tap.offset, this.size);
    this.taps.delete(tap);
    tap.left = true;
    tap.emit('end');
  }

  private failTap(tap: BlobTap, err: unknown): void {
    if (tap.left) return;
    this.stopCatchUp(tap);
    this.taps.delete(tap);
    tap.left = true;
    tap.emit('error', err);
    if (this.taps.size === 0 && !this.finished) {
      this.finish();
      this.call.cancel();
    } else {
      this.flow();
    }
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone();
  }
}

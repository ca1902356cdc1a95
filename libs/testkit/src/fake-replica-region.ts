import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { digestOf, isDigest, parseManifest } from '@meridian/oci';
import {
  BLOB_CHUNK_BYTES,
  CHANNEL_OPTIONS,
  compareClocks,
  grpc,
  ReplicaService,
  type ClockStamp,
  type PutBlobRequest__Output,
  type ReplicaHandlers,
} from '@meridian/proto';
import type { TestImage } from './oci-client.js';

/**
 * A region's Replica service (replica.proto) kept in memory, on a real gRPC server on loopback:
 * what the replication worker's tests replicate between until, and beside, the gateway's own
 * server. It honours the protocol's contract as the .proto states it:
 *
 * - LinkBlobs links held bytes into the repository and reports, for a blob not held, the
 *   verified offset an interrupted PutBlob left; FindBlobs reports the same read-only.
 * - PutBlob takes a header then bytes from exactly that offset, hashes them as they arrive,
 *   commits only bytes that hash to the digest and add up to the size, keeps what arrived when
 *   the stream breaks, and lets one PutBlob at a time write a given blob (ABORTED otherwise).
 * - GetBlob streams from an offset, BLOB_CHUNK_BYTES at a time, waiting for the client to read
 *   (write() returning false), and answers DATA_LOSS when the stored bytes no longer hash to
 *   their digest.
 * - ApplyManifest verifies the digest and the image-spec and needs every blob and child manifest
 *   in the repository first (FAILED_PRECONDITION), but for a child it knows was deleted; the
 *   subject need not exist.
 * - FetchBlob answers UNIMPLEMENTED, as a region without peers does: the worker relays the bytes
 *   to it with GetBlob and PutBlob, which is what these tests watch.
 * - ApplyDelete leaves tombstones, and deletes a manifest an index lists as any other (the
 *   clocks decide).
 * - Tags, manifests and their deletes are last-writer-wins on (hlc, origin).
 *
 * Metadata lives in memory; blob bytes live in files under a temporary directory, so a test can
 * move a blob of hundreds of MiB without the fake holding it in the test's heap.
 *
 * Test support: it counts calls and the bytes each blob stream carried, measures how many calls
 * were in flight at once, and can fail, hold or break calls on request.
 */

export type ReplicaMethod = 'Health' | 'LinkBlobs' | 'FindBlobs' | 'PutBlob' | 'GetBlob' | 'GetManifest' | 'ApplyManifest' | 'ApplyDelete' | 'ListInventory' | 'Purge';

export interface BlobStreamRecord {
  digest: string;
  /** Where the stream started (PutBlob: the header's offset; GetBlob: the request's). */
  offset: number;
  /** Blob bytes the stream carried. */
  bytes: number;
}

interface StoredManifest {
  mediaType: string;
  payload: Buffer;
  clock: ClockStamp;
  children: string[];
}

interface TagEntry {
  digest: string;
  clock: ClockStamp;
}

interface PartialBlob {
  offset: number;
  hash: Hash;
  file: string;
  writing: boolean;
}

interface InjectedFailure {
  code: grpc.status;
  message: string;
  remaining: number;
}

class StatusError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

const ZERO_CLOCK: ClockStamp = { hlc: 0n, origin: '' };

export class FakeReplicaRegion {
  /** Calls received, per method (including failed ones). */
  readonly calls: Record<ReplicaMethod, number> = {
    Health: 0,
    LinkBlobs: 0,
    FindBlobs: 0,
    PutBlob: 0,
    GetBlob: 0,
    GetManifest: 0,
    ApplyManifest: 0,
    ApplyDelete: 0,
    ListInventory: 0,
    Purge: 0,
  };
  /** Calls being served right now, and the most there have been at once. */
  inFlight = 0;
  maxInFlight = 0;
  readonly putBlobs: BlobStreamRecord[] = [];
  readonly getBlobs: BlobStreamRecord[] = [];

  private readonly blobs = new Map<string, { size: number; file: string }>();
  private readonly links = new Map<string, Set<string>>();
  private readonly partials = new Map<string, PartialBlob>();
  private readonly manifests = new Map<string, Map<string, StoredManifest>>();
  private readonly tags = new Map<string, Map<string, TagEntry>>();
  private readonly manifestTombstones = new Map<string, Map<string, ClockStamp>>();
  private readonly tagTombstones = new Map<string, Map<string, ClockStamp>>();
  private readonly failures = new Map<ReplicaMethod, InjectedFailure>();
  private readonly gates = new Map<ReplicaMethod, { opened: Promise<void>; open: () => void }>();
  private breakPutBlobAt: number | undefined;
  private writeDelayMs = 0;
  private getBlobPause: { at: number; released: Promise<void> } | undefined;
  private stopped = false;

  private constructor(
    readonly name: string,
    readonly address: string,
    private readonly server: grpc.Server,
    private readonly dir: string,
  ) {}

  /**
   * Starts a region named `name` on a free loopback port; `address` is its host:port. `serve`
   * wraps the handlers as a real region's server does (its spans: libs/telemetry tracedHandlers).
   */
  static async start(name: string, serve: (handlers: ReplicaHandlers) => ReplicaHandlers = (handlers) => handlers): Promise<FakeReplicaRegion> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `meridian-fake-${name}-`));
    await mkdir(path.join(dir, 'blobs'));
    await mkdir(path.join(dir, 'uploads'));
    const server = new grpc.Server(CHANNEL_OPTIONS);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    const region = new FakeReplicaRegion(name, `127.0.0.1:${port}`, server, dir);
    server.addService(ReplicaService, serve(region.handlers()));
    return region;
  }

  /** Stops serving at once (calls in flight are cut: a region going down) and removes its files. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const gate of this.gates.values()) gate.open();
    this.server.forceShutdown();
    await rm(this.dir, { recursive: true, force: true });
  }

  // ---- seeding and inspection (what a push to this region, or a look at its store, would do) ----

  /** Stores verified bytes and links them into `repository`, as a push would. Streams: never holds the blob whole. */
  async addBlob(repository: string, content: Uint8Array | AsyncIterable<Uint8Array>): Promise<{ digest: string; size: number }> {
    const file = path.join(this.dir, 'uploads', `seed-${Math.random().toString(36).slice(2)}`);
    const hash = createHash('sha256');
    const out = createWriteStream(file);
    let size = 0;
    for await (const chunk of content instanceof Uint8Array ? [content] : content) {
      hash.update(chunk);
      size += chunk.length;
      await writeBounded(out, chunk);
    }
    await closeFile(out);
    const digest = `sha256:${hash.digest('hex')}`;
    await rename(file, this.blobFile(digest));
    this.blobs.set(digest, { size, file: this.blobFile(digest) });
    this.link(repository, digest);
    return { digest, size };
  }

  /** Stores a manifest as a push would (no checks), with its clock, and points `tag` at it. */
  addManifest(repository: string, manifest: object | Uint8Array, options: { mediaType?: string; tag?: string; clock?: ClockStamp } = {}): string {
    const payload = Buffer.from(manifest instanceof Uint8Array ? manifest : JSON.stringify(manifest));
    const parsed = parseManifest(payload, options.mediaType);
    const digest = digestOf(payload);
    const clock = options.clock ?? { hlc: 1n, origin: this.name };
    this.repoMap(this.manifests, repository).set(digest, {
      mediaType: options.mediaType ?? parsed.mediaType,
      payload,
      clock,
      children: parsed.manifestReferences.map((child) => child.digest),
    });
    if (options.tag) this.repoMap(this.tags, repository).set(options.tag, { digest, clock });
    return digest;
  }

  /** Stores an image as a push would: config and layers, then the manifest (tagged `tag`). */
  async addImage(repository: string, image: TestImage, options: { tag?: string; clock?: ClockStamp } = {}): Promise<void> {
    for (const blob of [image.config, ...image.layers]) await this.addBlob(repository, blob.bytes);
    this.addManifest(repository, image.manifestBytes, { mediaType: image.mediaType, ...options });
  }

  manifest(repository: string, digest: string): { mediaType: string; payload: Buffer; clock: ClockStamp } | undefined {
    return this.manifests.get(repository)?.get(digest);
  }

  /** The digest `tag` points at, if any. */
  tag(repository: string, tag: string): string | undefined {
    return this.tags.get(repository)?.get(tag)?.digest;
  }

  /** Whether the region holds the blob's verified bytes and has them linked into `repository`. */
  hasBlob(repository: string, digest: string): boolean {
    return this.blobs.has(digest) && (this.links.get(repository)?.has(digest) ?? false);
  }

  /** The sha256 of the bytes stored for `digest`, read back from disk (undefined if not held). */
  async storedDigest(digest: string): Promise<string | undefined> {
    const blob = this.blobs.get(digest);
    if (!blob) return undefined;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(blob.file)) hash.update(chunk as Buffer);
    return `sha256:${hash.digest('hex')}`;
  }

  /** Verified bytes an interrupted PutBlob left for `digest` (0 if none). */
  partialOffset(digest: string): number {
    return this.partials.get(digest)?.offset ?? 0;
  }

  // ---- test controls ----

  /** The next `times` calls of `method` fail with `code` before doing anything. */
  failNext(method: ReplicaMethod, code: grpc.status, times = 1, message = `injected ${grpc.status[code]}`): void {
    this.failures.set(method, { code, message, remaining: times });
  }

  /** Calls of `method` wait, counted as in flight, until the returned function is called. */
  hold(method: ReplicaMethod): () => void {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.gates.set(method, { opened, open });
    return () => {
      this.gates.delete(method);
      open();
    };
  }

  /**
   * The next PutBlob that reaches `bytes` of its blob keeps exactly those bytes and ends with
   * UNAVAILABLE, as when the connection drops mid-blob.
   */
  breakNextPutBlobAt(bytes: number): void {
    this.breakPutBlobAt = bytes;
  }

  /**
   * PutBlob stores each chunk `ms` later than it arrives: a target slower than its source, so
   * that a sender that ignores backpressure would pile the blob up in memory.
   */
  slowWrites(ms: number): void {
    this.writeDelayMs = ms;
  }

  /**
   * GetBlob streams stop once they have sent up to byte `at` of their blob, until the returned
   * function is called: a copy caught in the middle.
   */
  pauseGetBlobAt(at: number): () => void {
    let release!: () => void;
    this.getBlobPause = { at, released: new Promise((resolve) => (release = resolve)) };
    return () => {
      this.getBlobPause = undefined;
      release();
    };
  }

  /** Overwrites one stored byte of `digest`, so its bytes no longer hash to the digest (a disk fault). */
  async corruptBlob(digest: string): Promise<void> {
    const blob = this.blobs.get(digest);
    if (!blob) throw new Error(`${this.name} does not hold ${digest}`);
    const handle = await open(blob.file, 'r+');
    try {
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, 0);
      byte[0] = byte[0]! ^ 0xff;
      await handle.write(byte, 0, 1, 0);
    } finally {
      await handle.close();
    }
  }

  // ---- the service ----

  private handlers(): ReplicaHandlers {
    return {
      Health: this.unary('Health', () => ({ region: this.name, ready: true, detail: '' })),
      LinkBlobs: this.unary('LinkBlobs', (request) => ({
        blobs: request.blobs.map(({ digest }) => {
          if (this.blobs.has(digest)) {
            this.link(request.repository, digest);
            return { digest, held: true, offset: '0' };
          }
          return { digest, held: false, offset: String(this.partialOffset(digest)) };
        }),
      })),
      FindBlobs: this.unary('FindBlobs', (request) => ({
        blobs: request.digests.map((digest) => {
          const blob = this.blobs.get(digest);
          return { digest, held: blob !== undefined, size: String(blob?.size ?? 0), linked: blob !== undefined && (this.links.get(request.repository)?.has(digest) ?? false) };
        }),
      })),
      PutBlob: (call, callback) => {
        this.serve('PutBlob', () => this.receiveBlob(call)).then(
          (reply) => callback(null, reply),
          (err) => callback(toServiceError(err)),
        );
      },
      GetBlob: (call) => {
        this.serve('GetBlob', () => this.sendBlob(call)).catch((err) => call.emit('error', toServiceError(err)));
      },
      FetchBlob: (_call, callback) => callback(toServiceError(new StatusError(grpc.status.UNIMPLEMENTED, `${this.name} fetches from no peer`))),
      GetManifest: this.unary('GetManifest', (request) => this.getManifest(request.repository, request.reference)),
      ApplyManifest: this.unary('ApplyManifest', (request) =>
        this.applyManifest(request.repository, request.digest, request.mediaType, request.payload, request.tag, toStamp(request.clock), request.blobsOnDemand),
      ),
      ApplyDelete: this.unary('ApplyDelete', (request) => this.applyDelete(request.kind, request.repository, request.name, toStamp(request.clock))),
      ListInventory: this.unary('ListInventory', () => this.inventory()),
      Purge: this.unary('Purge', (request) => this.purge(request.region, request.dryRun)),
    };
  }

  private unary<Req, Res>(method: ReplicaMethod, handle: (request: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      this.serve(method, () => handle(call.request)).then(
        (reply) => callback(null, reply),
        (err) => callback(toServiceError(err)),
      );
    };
  }

  /** Counts the call, applies injected failures and holds, then serves it. */
  private async serve<T>(method: ReplicaMethod, handle: () => T | Promise<T>): Promise<T> {
    this.calls[method]++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const failure = this.failures.get(method);
      if (failure) {
        if (--failure.remaining <= 0) this.failures.delete(method);
        throw new StatusError(failure.code, failure.message);
      }
      await this.gates.get(method)?.opened;
      return await handle();
    } finally {
      this.inFlight--;
    }
  }

  private async receiveBlob(call: grpc.ServerReadableStream<PutBlobRequest__Output, unknown>): Promise<{ digest: string; size: string; written: boolean }> {
    const messages = call[Symbol.asyncIterator]() as AsyncIterator<PutBlobRequest__Output>;
    const first = await messages.next();
    const header = first.done ? undefined : first.value.header;
    if (!header) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'the first PutBlob message must be a BlobHeader');
    const { repository, digest } = header;
    const size = Number(header.size);
    const offset = Number(header.offset);
    if (!isDigest(digest) || !digest.startsWith('sha256:')) throw new StatusError(grpc.status.INVALID_ARGUMENT, `not a sha256 digest: ${digest}`);
    if (this.blobs.has(digest)) {
      this.link(repository, digest);
      call.destroy();
      return { digest, size: String(this.blobs.get(digest)!.size), written: false };
    }
    let partial = this.partials.get(digest);
    if (partial?.writing) throw new StatusError(grpc.status.ABORTED, `another PutBlob is writing ${digest}`);
    if (offset !== (partial?.offset ?? 0)) {
      throw new StatusError(grpc.status.FAILED_PRECONDITION, `${digest} is held up to ${partial?.offset ?? 0}, not ${offset}`);
    }
    if (!partial) {
      partial = { offset: 0, hash: createHash('sha256'), file: path.join(this.dir, 'uploads', digest.replace(':', '-')), writing: false };
      this.partials.set(digest, partial);
    }
    const record: BlobStreamRecord = { digest, offset, bytes: 0 };
    this.putBlobs.push(record);
    partial.writing = true;
    const out = createWriteStream(partial.file, { flags: 'a' });
    try {
      for await (const message of { [Symbol.asyncIterator]: () => messages }) {
        if (!message.chunk) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'a PutBlob message after the header must carry bytes');
        let bytes: Buffer = message.chunk;
        if (partial.offset + bytes.length > size) {
          await this.discardPartial(digest, out);
          throw new StatusError(grpc.status.INVALID_ARGUMENT, `more bytes than the ${size} the header announced`);
        }
        const breakAt = this.breakPutBlobAt;
        const breaking = breakAt !== undefined && partial.offset + bytes.length >= breakAt;
        if (breaking) bytes = bytes.subarray(0, breakAt - partial.offset);
        if (this.writeDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.writeDelayMs));
        partial.hash.update(bytes);
        partial.offset += bytes.length;
        record.bytes += bytes.length;
        await writeBounded(out, bytes);
        if (breaking) {
          this.breakPutBlobAt = undefined;
          throw new StatusError(grpc.status.UNAVAILABLE, `stream broken at ${partial.offset} bytes (injected)`);
        }
      }
    } finally {
      // What arrived stays (the verified offset LinkBlobs reports), whatever ended the stream.
      if (!out.closed) await closeFile(out);
      partial.writing = false;
    }
    if (partial.offset !== size) {
      throw new StatusError(grpc.status.INVALID_ARGUMENT, `the stream ended at ${partial.offset} of ${size} bytes`);
    }
    this.partials.delete(digest);
    const actual = `sha256:${partial.hash.digest('hex')}`;
    if (actual !== digest) {
      await rm(partial.file, { force: true });
      throw new StatusError(grpc.status.INVALID_ARGUMENT, `the bytes hash to ${actual}, not ${digest}`);
    }
    await rename(partial.file, this.blobFile(digest));
    this.blobs.set(digest, { size, file: this.blobFile(digest) });
    this.link(repository, digest);
    return { digest, size: String(size), written: true };
  }

  private async discardPartial(digest: string, out: WriteStream): Promise<void> {
    await closeFile(out);
    const partial = this.partials.get(digest);
    this.partials.delete(digest);
    if (partial) await rm(partial.file, { force: true });
  }

  private async sendBlob(call: grpc.ServerWritableStream<{ digest: string; offset: string; repository: string }, unknown>): Promise<void> {
    const { digest, repository } = call.request;
    const offset = Number(call.request.offset);
    const blob = this.blobs.get(digest);
    if (!blob || (repository !== '' && !this.links.get(repository)?.has(digest))) {
      throw new StatusError(grpc.status.NOT_FOUND, `${this.name} does not hold ${digest}${repository ? ` in ${repository}` : ''}`);
    }
    if (offset > blob.size) throw new StatusError(grpc.status.OUT_OF_RANGE, `offset ${offset} is past the size ${blob.size}`);
    const record: BlobStreamRecord = { digest, offset, bytes: 0 };
    this.getBlobs.push(record);
    // The bytes before the offset are hashed too, so a corrupt blob is DATA_LOSS from any offset.
    const hash = createHash('sha256');
    if (offset > 0) for await (const chunk of createReadStream(blob.file, { end: offset - 1 })) hash.update(chunk as Buffer);
    let first = true;
    if (offset < blob.size) {
      for await (const chunk of createReadStream(blob.file, { start: offset, highWaterMark: BLOB_CHUNK_BYTES }) as AsyncIterable<Buffer>) {
        const position = offset + record.bytes;
        const pause = this.getBlobPause;
        const parts = pause && position < pause.at && position + chunk.length >= pause.at ? [chunk.subarray(0, pause.at - position), chunk.subarray(pause.at - position)] : [chunk];
        for (const [i, data] of parts.entries()) {
          if (i > 0) await pause!.released;
          if (call.destroyed) return;
          if (data.length === 0) continue;
          hash.update(data);
          record.bytes += data.length;
          const more = call.write({ data, size: first ? String(blob.size) : '0' });
          first = false;
          if (!more) await drained(call);
        }
      }
    }
    if (call.destroyed) return;
    if (`sha256:${hash.digest('hex')}` !== digest) throw new StatusError(grpc.status.DATA_LOSS, `the stored bytes of ${digest} no longer match it`);
    if (first) call.write({ data: Buffer.alloc(0), size: String(blob.size) });
    call.end();
  }

  private getManifest(repository: string, reference: string) {
    const byTag = isDigest(reference) ? undefined : this.tags.get(repository)?.get(reference);
    const digest = byTag?.digest ?? reference;
    const manifest = this.manifests.get(repository)?.get(digest);
    if (!manifest) throw new StatusError(grpc.status.NOT_FOUND, `no manifest ${reference} in ${repository}`);
    return {
      digest,
      mediaType: manifest.mediaType,
      payload: manifest.payload,
      clock: fromStamp(manifest.clock),
      tagClock: byTag ? fromStamp(byTag.clock) : null,
    };
  }

  private applyManifest(repository: string, digest: string, mediaType: string, payload: Buffer, tag: string, clock: ClockStamp, blobsOnDemand = false) {
    if (digestOf(payload) !== digest) throw new StatusError(grpc.status.INVALID_ARGUMENT, `the payload does not hash to ${digest}`);
    let parsed;
    try {
      parsed = parseManifest(payload, mediaType);
    } catch (err) {
      throw new StatusError(grpc.status.INVALID_ARGUMENT, (err as Error).message);
    }
    const missing = [
      // An edge region's copy (blobs_on_demand) takes the manifest before its blobs.
      ...(blobsOnDemand ? [] : parsed.blobReferences.filter((blob) => !this.hasBlob(repository, blob.digest))),
      ...parsed.manifestReferences.filter(
        (child) => !this.manifests.get(repository)?.has(child.digest) && !this.manifestTombstones.get(repository)?.has(child.digest),
      ),
    ].map((descriptor) => descriptor.digest);
    if (missing.length > 0) throw new StatusError(grpc.status.FAILED_PRECONDITION, `missing in ${repository}: ${missing.join(', ')}`);

    let applied = false;
    const manifests = this.repoMap(this.manifests, repository);
    const tombstone = this.manifestTombstones.get(repository)?.get(digest);
    if (tombstone && compareClocks(clock, tombstone) <= 0) return { applied: false, detail: 'deleted by a newer write' };
    if (!manifests.has(digest)) {
      manifests.set(digest, { mediaType, payload, clock, children: parsed.manifestReferences.map((child) => child.digest) });
      this.manifestTombstones.get(repository)?.delete(digest);
      applied = true;
    }
    if (tag) {
      const current = this.tags.get(repository)?.get(tag)?.clock ?? this.tagTombstones.get(repository)?.get(tag) ?? ZERO_CLOCK;
      if (compareClocks(clock, current) > 0) {
        this.repoMap(this.tags, repository).set(tag, { digest, clock });
        this.tagTombstones.get(repository)?.delete(tag);
        applied = true;
      }
    }
    return { applied, detail: applied ? '' : 'already held, or the tag has a newer write' };
  }

  private applyDelete(kind: string, repository: string, name: string, clock: ClockStamp) {
    if (kind === 'TAG') {
      const current = this.tags.get(repository)?.get(name)?.clock ?? this.tagTombstones.get(repository)?.get(name) ?? ZERO_CLOCK;
      if (compareClocks(clock, current) <= 0) return { applied: false, detail: 'the tag has a newer write' };
      this.tags.get(repository)?.delete(name);
      this.repoMap(this.tagTombstones, repository).set(name, clock);
      return { applied: true, detail: '' };
    }
    if (kind === 'MANIFEST') {
      const manifests = this.manifests.get(repository);
      const current = manifests?.get(name)?.clock ?? this.manifestTombstones.get(repository)?.get(name) ?? ZERO_CLOCK;
      if (compareClocks(clock, current) <= 0) return { applied: false, detail: 'the manifest has a newer write' };
      manifests?.delete(name);
      this.repoMap(this.manifestTombstones, repository).set(name, clock);
      for (const [tag, entry] of this.tags.get(repository) ?? []) {
        if (entry.digest === name) {
          this.tags.get(repository)!.delete(tag);
          this.repoMap(this.tagTombstones, repository).set(tag, clock);
        }
      }
      return { applied: true, detail: '' };
    }
    if (kind === 'BLOB') {
      const applied = this.links.get(repository)?.delete(name) ?? false;
      return { applied, detail: applied ? '' : 'not linked' };
    }
    throw new StatusError(grpc.status.INVALID_ARGUMENT, `unknown delete kind ${kind}`);
  }

  private inventory() {
    const manifests = [...this.manifests].flatMap(([repository, byDigest]) =>
      [...byDigest].map(([digest, m]) => ({ repository, digest, mediaType: m.mediaType, size: String(m.payload.length), clock: fromStamp(m.clock) })),
    );
    const tags = [...this.tags].flatMap(([repository, byTag]) =>
      [...byTag].map(([tag, entry]) => ({ repository, tag, digest: entry.digest, clock: fromStamp(entry.clock) })),
    );
    const blobs = [...this.links].flatMap(([repository, digests]) =>
      [...digests].map((digest) => ({ repository, digest, size: String(this.blobs.get(digest)?.size ?? 0), state: 'present' })),
    );
    return { manifests, tags, blobs, nextPageToken: '' };
  }

  /** Purge in one call (its default page is everything); the fake has no outbox, so nothing is unrelayed. */
  private async purge(region: string, dryRun: boolean) {
    if (region !== this.name) throw new StatusError(grpc.status.FAILED_PRECONDITION, `this is region "${this.name}", not "${region}"`);
    const count = (maps: Map<string, Map<string, unknown> | Set<string>>) => [...maps.values()].reduce((sum, map) => sum + map.size, 0);
    const repositories = new Set([...this.manifests.keys(), ...this.tags.keys(), ...this.links.keys()]);
    const counts = {
      repositories: String(repositories.size),
      manifests: String(count(this.manifests)),
      tags: String(count(this.tags)),
      blobLinks: String(count(this.links)),
      blobs: String(this.blobs.size),
      bytes: String([...this.blobs.values()].reduce((sum, blob) => sum + blob.size, 0)),
      discardedChanges: '0',
    };
    if (!dryRun) {
      await Promise.all([...this.blobs.values()].map((blob) => rm(blob.file, { force: true })));
      for (const map of [this.blobs, this.links, this.partials, this.manifests, this.tags, this.manifestTombstones, this.tagTombstones]) map.clear();
    }
    return { counts, unrelayed: '0', done: !dryRun || repositories.size + this.blobs.size === 0 };
  }

  private link(repository: string, digest: string): void {
    let digests = this.links.get(repository);
    if (!digests) this.links.set(repository, (digests = new Set()));
    digests.add(digest);
  }

  private repoMap<V>(maps: Map<string, Map<string, V>>, repository: string): Map<string, V> {
    let map = maps.get(repository);
    if (!map) maps.set(repository, (map = new Map()));
    return map;
  }

  private blobFile(digest: string): string {
    return path.join(this.dir, 'blobs', digest.replace(':', '-'));
  }
}

function toStamp(clock: { hlc: string; origin: string } | null): ClockStamp {
  if (!clock || !/^\d+$/.test(clock.hlc) || !clock.origin) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'a write needs a clock (hlc, origin)');
  return { hlc: BigInt(clock.hlc), origin: clock.origin };
}

function fromStamp(clock: ClockStamp): { hlc: string; origin: string } {
  return { hlc: clock.hlc.toString(), origin: clock.origin };
}

function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof StatusError) return { code: err.code, details: err.message };
  return { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}

async function writeBounded(out: Writable, bytes: Uint8Array): Promise<void> {
  if (!out.write(bytes)) await drained(out);
}

/** Resolves once `stream` can take more, or is gone (a cancelled call never drains). */
function drained(stream: Writable | Readable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

async function closeFile(out: WriteStream): Promise<void> {
  out.end();
  if (!out.closed) await once(out, 'close');
}

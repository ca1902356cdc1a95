import { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { ReplicaPreconditionError, ReplicaRequestError, type ReplicaApplier, type ReplicatedDeleteKind } from '@meridian/registry';
import { BLOB_CHUNK_BYTES, CHANNEL_OPTIONS, ReplicaService, authenticatedHandlers, grpc, type BlobChunk, type Clock__Output, type FetchBlobReply, type PutBlobRequest__Output, type ReplicaCallerVerifier, type ReplicaHandlers, type ServerCertificate, replicaServerCredentials } from '@meridian/proto';
import type { ClockStamp } from '@meridian/proto/clock';
import { toGrpcStatus } from './status.js';
import { tracedHandlers } from '@meridian/telemetry/grpc';

export interface ReplicaServerDependencies {
  region: string;
  replica: ReplicaApplier;
  /** The same readiness the HTTP `/readyz` answers with. */
  readiness(): Promise<{ ready: boolean; detail: string }>;
  logger: Logger;
  /** Checks each call's service token (audience: this region) before any handler runs. */
  callers: ReplicaCallerVerifier;
  /** Served with TLS (1.2 at least) when given; plaintext otherwise. */
  certificate?: ServerCertificate;
  /** Told when a purge starts emptying the region, so nothing fills it again meanwhile. */
  onPurge?(): void;
  /**
   * A peer region's bytes of a blob from `offset` (RegionPeers.openBlob), for FetchBlob; a region
   * without peers (no control plane) answers FetchBlob UNIMPLEMENTED, and its callers relay.
   */
  openPeerBlob?(region: string, digest: string, offset: number): Promise<Readable>;
}

export interface ReplicaServer {
  /** Binds `host:port` (port 0 picks one); resolves with the port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops taking calls; calls in flight get `graceMs` to finish, then are cut. */
  close(graceMs: number): Promise<void>;
}

const DELETE_KINDS: Record<string, ReplicatedDeleteKind> = { TAG: 'tag', MANIFEST: 'manifest', BLOB: 'blob' };

/**
 * The region's side of the replica protocol (libs/proto, replica.proto) over gRPC: each method
 * unpacks its message, calls the ReplicaApplier, and answers, with errors turned into statuses
 * in one place (status.ts). No handler runs for a call without a valid service token from a
 * service allowed that method (libs/proto replica-auth.ts).
 */
export function createReplicaServer(deps: ReplicaServerDependencies): ReplicaServer {
  const { replica, logger } = deps;
  const status = (code: grpc.status, details: string): grpc.ServiceError => Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
  const fail = (err: unknown): grpc.ServiceError => {
    const failure = toGrpcStatus(err);
    if (failure.unexpected) logger.error({ err }, 'replica call failed');
    return status(failure.code, failure.details);
  };
  const unary =
    <Request, Reply>(work: (request: Request) => Promise<Reply>): grpc.handleUnaryCall<Request, Reply> =>
    (call, callback) => {
      work(call.request).then(
        (reply) => callback(null, reply),
        (err) => callback(fail(err)),
      );
    };

  const handlers: ReplicaHandlers = {
    Health: unary(async () => ({ region: deps.region, ...(await deps.readiness()) })),

    LinkBlobs: unary(async (request) => ({
      blobs: (await replica.linkBlobs(request.repository, request.blobs.map((blob) => ({ digest: blob.digest, size: Number(blob.size) })))).map((holding) => ({
        digest: holding.digest,
        held: holding.held,
        offset: String(holding.offset),
      })),
    })),

    FindBlobs: unary(async (request) => ({
      blobs: (await replica.findBlobs(request.repository, request.digests)).map((presence) => ({ ...presence, size: String(presence.size) })),
    })),

    PutBlob(call, callback) {
      receive(call).then(
        (reply) => callback(null, reply),
        (err) => callback(fail(err)),
      );
    },

    FetchBlob(call, callback) {
      const open = deps.openPeerBlob;
      if (!open) {
        callback(status(grpc.status.UNIMPLEMENTED, `region ${deps.region} has no peers to fetch from: relay the bytes with PutBlob`));
        return;
      }
      const { repository, digest, source } = call.request;
      // The caller gone (its job cancelled, its process stopped) stops the fetch: what came is kept.
      const fetching = new AbortController();
      call.on('cancelled', () => fetching.abort());
      replica
        .fetchBlob({ repository, digest, size: Number(call.request.size) }, async (offset) => {
          const bytes = await open(source, digest, offset);
          fetching.signal.addEventListener('abort', () => bytes.destroy(), { once: true });
          if (fetching.signal.aborted) bytes.destroy();
          return bytes;
        })
        .then(
          ({ written, received, sourceFailure }) => {
            const reply: FetchBlobReply = { written, received: String(received) };
            if (sourceFailure !== undefined) {
              // A peer's own status passes on as it came; anything else (a refused connection, a region no longer listed) is the peer being away.
              const code = (sourceFailure as { code?: unknown }).code;
              reply.sourceCode = typeof code === 'number' && code !== grpc.status.OK ? code : grpc.status.UNAVAILABLE;
              reply.sourceDetail = `${source}: ${(sourceFailure as Error).message ?? String(sourceFailure)}`;
            }
            callback(null, reply);
          },
          (err) => callback(fail(err)),
        );
    },

    GetBlob(call) {
      const { digest, offset } = call.request;
      const messages = new BlobChunkWriter(call);
      // A call that ends early (the receiver gone, a failed send) ends the copy: it would
      // otherwise wait for room on the call for ever, holding its file and buffers.
      call.on('cancelled', () => messages.destroy());
      call.on('close', () => messages.destroy());
      replica
        .openBlob(digest, Number(offset))
        .then(async ({ size, copyTo }) => {
          messages.size = size;
          await copyTo(messages);
          // A blob read from its very end still says its size, in one empty message.
          if (messages.first) call.write({ data: Buffer.alloc(0), size: String(size) } satisfies BlobChunk);
          call.end();
        })
        .catch((err) => {
          messages.destroy();
          if (call.cancelled) return;
          // grpc-js sends a server stream's status from an 'error' event on the call.
          call.emit('error', fail(err));
        });
    },

    GetManifest: unary(async (request) => {
      const manifest = await replica.getManifest(request.repository, request.reference);
      return {
        digest: manifest.digest,
        mediaType: manifest.mediaType,
        payload: manifest.payload,
        clock: toClock(manifest.clock),
        ...(manifest.tagClock ? { tagClock: toClock(manifest.tagClock) } : {}),
      };
    }),

    ApplyManifest: unary(async (request) =>
      replica.applyManifest({
        repository: request.repository,
        digest: request.digest,
        mediaType: request.mediaType,
        payload: request.payload,
        ...(request.tag ? { tag: request.tag } : {}),
        clock: fromClock(request.clock),
        blobsOnDemand: request.blobsOnDemand,
      }),
    ),

    ApplyDelete: unary(async (request) => {
      const kind = DELETE_KINDS[request.kind];
      if (!kind) throw new ReplicaRequestError(`unknown delete kind ${request.kind}`);
      return replica.applyDelete(kind, request.repository, request.name, fromClock(request.clock));
    }),

    ListInventory: unary(async (request) => {
      const page = await replica.listInventory(request.pageToken || undefined, request.pageSize, { verify: request.verify });
      return {
        manifests: page.manifests.map((m) => ({ repository: m.repository, digest: m.digest, mediaType: m.mediaType, size: String(m.size), clock: toClock(m.clock) })),
        tags: page.tags.map((t) => ({ repository: t.repository, tag: t.tag, digest: t.digest, clock: toClock(t.clock) })),
        blobs: page.blobs.map((b) => ({ repository: b.repository, digest: b.digest, size: String(b.size), state: b.state })),
        nextPageToken: page.nextPageToken ?? '',
        unrelayed: String(page.unrelayed ?? 0),
      };
    }),

    Purge: unary(async (request) => {
      // The request names the region it means: an address reused by another region purges nothing.
      if (request.region !== deps.region) throw new ReplicaPreconditionError(`this is region "${deps.region}", not "${request.region}": nothing purged`);
      deps.onPurge?.();
      const step = await replica.purge({ dryRun: request.dryRun, pageSize: request.pageSize, discardUnrelayed: request.discardUnrelayed });
      return {
        counts: Object.fromEntries(Object.entries(step.counts).map(([name, value]) => [name, String(value)])),
        unrelayed: String(step.unrelayed),
        done: step.done,
      };
    }),
  };

  /** PutBlob: a header, then the bytes, handed to the applier as one stream with backpressure. */
  async function receive(call: grpc.ServerReadableStream<PutBlobRequest__Output, unknown>) {
    const messages = call[Symbol.asyncIterator]();
    const first = await messages.next();
    const header = first.done ? undefined : first.value.header;
    if (!header) throw new ReplicaRequestError('PutBlob must start with a header');
    async function* bytes() {
      for (;;) {
        const next = await messages.next();
        if (next.done) return;
        if (next.value.chunk) yield next.value.chunk;
      }
    }
    const source = Readable.from(bytes(), { objectMode: false });
    // A sender that breaks off shows as this stream's error, which the applier sees as a short
    // transfer; the event itself must not go unheard (a blob already held is never read at all).
    source.on('error', () => undefined);
    const written = await replica.receiveBlob(
      { repository: header.repository, digest: header.digest, size: Number(header.size), offset: Number(header.offset) },
      source,
    );
    return { digest: header.digest, size: header.size, written };
  }

  const server = new grpc.Server(CHANNEL_OPTIONS);
  // Refused calls are logged at warn: a caller with a wrong or missing cluster secret is a
  // misconfiguration an operator must see (the reason names the check, never the token).
  const guarded = authenticatedHandlers(handlers, deps.callers, (refusal) => logger.warn({ method: refusal.method, reason: refusal.reason }, 'replica call refused'));
  server.addService(ReplicaService, tracedHandlers(guarded, 'replica', { 'meridian.region': deps.region }));

  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
        server.bindAsync(address, replicaServerCredentials(deps.certificate), (err, bound) => (err ? reject(err) : resolve(bound)));
      }),
    close: (graceMs) =>
      new Promise((resolve) => {
        const cut = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(cut);
          resolve();
        });
      }),
  };
}

/**
 * A blob's bytes as BlobChunk messages of at most BLOB_CHUNK_BYTES on a GetBlob call; the first
 * says the blob's size. A write is done once the call has sent its messages on (grpc-js calls
 * back when HTTP/2 has taken them), so the store's copy, which reuses its buffers, refills one
 * only then: a slow receiver holds back the disk read through the call's flow control, and
 * memory stays at the copy's two buffers.
 */
class BlobChunkWriter extends Writable {
  size = 0;
  first = true;

  constructor(private readonly call: grpc.ServerWritableStream<unknown, BlobChunk>) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    for (let start = 0; start < chunk.length; start += BLOB_CHUNK_BYTES) {
      const message: BlobChunk = { data: chunk.subarray(start, start + BLOB_CHUNK_BYTES) };
      if (this.first) {
        message.size = String(this.size);
        this.first = false;
      }
      const last = start + BLOB_CHUNK_BYTES >= chunk.length;
      this.call.write(message, last ? (err: Error | null | undefined) => done(err) : undefined);
    }
  }
}

function toClock(clock: ClockStamp): { hlc: string; origin: string } {
  return { hlc: clock.hlc.toString(), origin: clock.origin };
}

function fromClock(clock: Clock__Output | null): ClockStamp {
  if (!clock || !/^\d{1,20}$/.test(clock.hlc) || !clock.origin) {
    throw new ReplicaRequestError('a replicated write needs a clock (hlc and origin)');
  }
  return { hlc: BigInt(clock.hlc), origin: clock.origin };
}

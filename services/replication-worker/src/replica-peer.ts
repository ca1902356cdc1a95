import {
  grpc,
  type ReplicaDialer,
  type BlobChunk__Output,
  type Clock,
  type FetchBlobReply__Output,
  type ManifestReply__Output,
  type PutBlobRequest,
  type ReplicaClient,
} from '@meridian/proto';

/** How long a unary call may take. Blob streams have no deadline: a large blob takes as long as it takes (keepalive notices a dead peer). */
const UNARY_DEADLINE_MS = 30_000;

export type DeleteKind = 'TAG' | 'MANIFEST' | 'BLOB';

/** LinkBlobs' answer for one blob: held (and now linked), or the verified offset an interrupted PutBlob left. */
export interface BlobHolding {
  digest: string;
  held: boolean;
  offset: string;
}

export interface ApplyReply {
  applied: boolean;
  detail: string;
}

/**
 * One region's Replica service as the worker calls it (replica.proto): unary calls as promises
 * that reject with the call's gRPC status and are cancelled when `signal` aborts, streams as
 * grpc-js streams. Depends on the protocol only, so any server of it will do.
 */
export class ReplicaPeer {
  constructor(
    readonly name: string,
    readonly address: string,
    private readonly client: ReplicaClient,
  ) {}

  async linkBlobs(repository: string, blobs: { digest: string; size: number }[], signal: AbortSignal): Promise<BlobHolding[]> {
    const reply = await this.unary<{ blobs: BlobHolding[] }>(signal, (options, done) =>
      this.client.linkBlobs({ repository, blobs: blobs.map((b) => ({ digest: b.digest, size: b.size })) }, options, done),
    );
    return reply.blobs;
  }

  getManifest(repository: string, reference: string, signal: AbortSignal): Promise<ManifestReply__Output> {
    return this.unary(signal, (options, done) => this.client.getManifest({ repository, reference }, options, done));
  }

  applyManifest(
    request: { repository: string; digest: string; mediaType: string; payload: Buffer; tag?: string; clock: Clock; blobsOnDemand?: boolean },
    signal: AbortSignal,
  ): Promise<ApplyReply> {
    return this.unary(signal, (options, done) => this.client.applyManifest(request, options, done));
  }

  applyDelete(request: { kind: DeleteKind; repository: string; name: string; clock: Clock }, signal: AbortSignal): Promise<ApplyReply> {
    return this.unary(signal, (options, done) => this.client.applyDelete(request, options, done));
  }

  /** GetBlob from `offset`; `repository` empty reads any blob the region holds. */
  getBlob(request: { digest: string; offset: number; repository: string }): grpc.ClientReadableStream<BlobChunk__Output> {
    return this.client.getBlob({ digest: request.digest, offset: request.offset, repository: request.repository });
  }

  /**
   * FetchBlob: the region copies the blob from the region named `source` itself. No deadline: a
   * large blob takes as long as it takes (keepalive notices a dead peer); `signal` cancels it.
   */
  fetchBlob(request: { repository: string; digest: string; size: number; source: string }, signal: AbortSignal): Promise<FetchBlobReply__Output> {
    return this.unary(signal, (options, done) => this.client.fetchBlob(request, options, done), Infinity);
  }

  putBlob(done: (err: grpc.ServiceError | null, reply?: { written: boolean }) => void): grpc.ClientWritableStream<PutBlobRequest> {
    return this.client.putBlob(done);
  }

  close(): void {
    this.client.close();
  }

  private unary<Reply>(
    signal: AbortSignal,
    start: (options: grpc.CallOptions, done: (err: grpc.ServiceError | null, reply?: Reply) => void) => grpc.ClientUnaryCall,
    deadlineMs = UNARY_DEADLINE_MS,
  ): Promise<Reply> {
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const cancel = () => call.cancel();
      const call = start(Number.isFinite(deadlineMs) ? { deadline: Date.now() + deadlineMs } : {}, (err, reply) => {
        signal.removeEventListener('abort', cancel);
        if (err) reject(err);
        else resolve(reply!);
      });
      signal.addEventListener('abort', cancel, { once: true });
    });
  }
}

/** One client per region address, shared by every job, closed when the worker stops. */
export class ReplicaPeers {
  private readonly peers = new Map<string, ReplicaPeer>();

  /** `dialer` signs every call with the worker's service token (and passes the trace context on). */
  constructor(private readonly dialer: ReplicaDialer) {}

  peer(region: { name: string; grpc: string }): ReplicaPeer {
    const key = `${region.name} ${region.grpc}`;
    let peer = this.peers.get(key);
    if (!peer) this.peers.set(key, (peer = new ReplicaPeer(region.name, region.grpc, this.dialer.dial(region))));
    return peer;
  }

  close(): void {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
  }
}

import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/replica.js';
import type { ReplicaClient, ReplicaHandlers } from './generated/meridian/replica/v1/Replica.js';
import { serviceTokenInterceptor, type ReplicaTokenSource } from './replica-auth.js';

export type { ReplicaClient, ReplicaHandlers };
export type { ApplyDeleteRequest__Output } from './generated/meridian/replica/v1/ApplyDeleteRequest.js';
export type { ApplyManifestRequest__Output } from './generated/meridian/replica/v1/ApplyManifestRequest.js';
export type { ApplyReply } from './generated/meridian/replica/v1/ApplyReply.js';
export type { BlobChunk, BlobChunk__Output } from './generated/meridian/replica/v1/BlobChunk.js';
export type { BlobHolding } from './generated/meridian/replica/v1/BlobHolding.js';
export type { Clock, Clock__Output } from './generated/meridian/replica/v1/Clock.js';
export type { FetchBlobReply, FetchBlobReply__Output } from './generated/meridian/replica/v1/FetchBlobReply.js';
export type { FindBlobsReply__Output } from './generated/meridian/replica/v1/FindBlobsReply.js';
export type { ListInventoryReply } from './generated/meridian/replica/v1/ListInventoryReply.js';
export type { ManifestReply, ManifestReply__Output } from './generated/meridian/replica/v1/ManifestReply.js';
export type { PurgeReply__Output } from './generated/meridian/replica/v1/PurgeReply.js';
export type { PutBlobRequest, PutBlobRequest__Output } from './generated/meridian/replica/v1/PutBlobRequest.js';

/** The .proto files: the protocol's source of truth. `pnpm --filter @meridian/proto generate` rewrites src/generated from them. */
export const PROTO_ROOT = fileURLToPath(new URL('../proto', import.meta.url));
export const REPLICA_PROTO = 'meridian/replica/v1/replica.proto';

/**
 * Loader options, the same ones the type generator is run with (package.json "generate"), so the
 * generated types describe exactly the objects the loader produces: 64-bit integers and enums as
 * strings, defaults filled in, and a virtual field naming the set member of each oneof.
 */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

const packageDefinition = protoLoader.loadSync(REPLICA_PROTO, LOADER_OPTIONS);
const replicaPackage = (grpc.loadPackageDefinition(packageDefinition) as unknown as ProtoGrpcType).meridian.replica.v1;

/** The Replica service definition, for `server.addService(ReplicaService, handlers)`. */
export const ReplicaService = replicaPackage.Replica.service;

/**
 * Largest message either side accepts. Blob bytes travel in chunks of BLOB_CHUNK_BYTES; a
 * manifest (at most 4 MiB by the OCI rules Meridian enforces) travels whole in one message.
 */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Blob bytes per PutBlob/GetBlob message: large enough to keep per-message cost low, small enough to bound memory. */
export const BLOB_CHUNK_BYTES = 256 * 1024;

/**
 * HTTP/2 flow-control window of every replica stream and connection, each way: how many bytes a
 * sender may have in flight before the receiver has taken them. Node's default, 64 KiB, made
 * every 32 KiB of a blob wait for a WINDOW_UPDATE from the receiving process, so a copy ran at
 * the pace of the busiest process's event loop: a 1 GiB layer replicated at 8-20 MiB/s per
 * target on this shared machine (e2e/bench/README.md, "pnpm bench replication"). A receiver
 * still takes only what it reads, so a slow one holds a sender back with at most this much
 * buffered per stream. grpc-js applies it to its servers with a patch
 * (patches/@grpc__grpc-js@*.patch, grpc/grpc-node#3058); its clients take it as it is.
 */
export const FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
  // Replication connections are long-lived and mostly idle between pushes.
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
};

/**
 * A client of one region's replica server, e.g. `createReplicaClient('127.0.0.1:7001')`;
 * `interceptors` see every call (the worker's passes the trace context on).
 */
export function createReplicaClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  interceptors: grpc.Interceptor[] = [],
): ReplicaClient {
  return new replicaPackage.Replica(address, credentials, { ...CHANNEL_OPTIONS, interceptors });
}

/** How a service reaches regions' replica servers: the token it signs calls with, and the channel credentials. */
export interface ReplicaDialerOptions {
  /** Mints the service token every call carries: a region refuses a call without one (replica-auth.ts). */
  tokens: ReplicaTokenSource;
  credentials?: grpc.ChannelCredentials;
  /** Run before the token is added (the worker's passes the trace context on). */
  interceptors?: grpc.Interceptor[];
}

/** Opens clients of regions' replica servers, each call carrying a token for the region it calls (its audience). */
export class ReplicaDialer {
  constructor(private readonly options: ReplicaDialerOptions) {}

  dial(region: { name: string; grpc: string }): ReplicaClient {
    return createReplicaClient(region.grpc, this.options.credentials, [...(this.options.interceptors ?? []), serviceTokenInterceptor(this.options.tokens, region.name)]);
  }
}

export { grpc };
export * from './replica-auth.js';
export * from './tls.js';
export * from './changes.js';
export * from './clock.js';
export * from './geo.js';
export * from './jobs.js';
export * from './purge.js';
export * from './audit.js';
export * from './geo.js';
export * from './cluster-http.js';

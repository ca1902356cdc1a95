// Original file: proto/meridian/replica/v1/replica.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ApplyDeleteRequest as _meridian_replica_v1_ApplyDeleteRequest, ApplyDeleteRequest__Output as _meridian_replica_v1_ApplyDeleteRequest__Output } from '../../../meridian/replica/v1/ApplyDeleteRequest.js';
import type { ApplyManifestRequest as _meridian_replica_v1_ApplyManifestRequest, ApplyManifestRequest__Output as _meridian_replica_v1_ApplyManifestRequest__Output } from '../../../meridian/replica/v1/ApplyManifestRequest.js';
import type { ApplyReply as _meridian_replica_v1_ApplyReply, ApplyReply__Output as _meridian_replica_v1_ApplyReply__Output } from '../../../meridian/replica/v1/ApplyReply.js';
import type { BlobChunk as _meridian_replica_v1_BlobChunk, BlobChunk__Output as _meridian_replica_v1_BlobChunk__Output } from '../../../meridian/replica/v1/BlobChunk.js';
import type { FetchBlobReply as _meridian_replica_v1_FetchBlobReply, FetchBlobReply__Output as _meridian_replica_v1_FetchBlobReply__Output } from '../../../meridian/replica/v1/FetchBlobReply.js';
import type { FetchBlobRequest as _meridian_replica_v1_FetchBlobRequest, FetchBlobRequest__Output as _meridian_replica_v1_FetchBlobRequest__Output } from '../../../meridian/replica/v1/FetchBlobRequest.js';
import type { FindBlobsReply as _meridian_replica_v1_FindBlobsReply, FindBlobsReply__Output as _meridian_replica_v1_FindBlobsReply__Output } from '../../../meridian/replica/v1/FindBlobsReply.js';
import type { FindBlobsRequest as _meridian_replica_v1_FindBlobsRequest, FindBlobsRequest__Output as _meridian_replica_v1_FindBlobsRequest__Output } from '../../../meridian/replica/v1/FindBlobsRequest.js';
import type { GetBlobRequest as _meridian_replica_v1_GetBlobRequest, GetBlobRequest__Output as _meridian_replica_v1_GetBlobRequest__Output } from '../../../meridian/replica/v1/GetBlobRequest.js';
import type { GetManifestRequest as _meridian_replica_v1_GetManifestRequest, GetManifestRequest__Output as _meridian_replica_v1_GetManifestRequest__Output } from '../../../meridian/replica/v1/GetManifestRequest.js';
import type { HealthReply as _meridian_replica_v1_HealthReply, HealthReply__Output as _meridian_replica_v1_HealthReply__Output } from '../../../meridian/replica/v1/HealthReply.js';
import type { HealthRequest as _meridian_replica_v1_HealthRequest, HealthRequest__Output as _meridian_replica_v1_HealthRequest__Output } from '../../../meridian/replica/v1/HealthRequest.js';
import type { LinkBlobsReply as _meridian_replica_v1_LinkBlobsReply, LinkBlobsReply__Output as _meridian_replica_v1_LinkBlobsReply__Output } from '../../../meridian/replica/v1/LinkBlobsReply.js';
import type { LinkBlobsRequest as _meridian_replica_v1_LinkBlobsRequest, LinkBlobsRequest__Output as _meridian_replica_v1_LinkBlobsRequest__Output } from '../../../meridian/replica/v1/LinkBlobsRequest.js';
import type { ListInventoryReply as _meridian_replica_v1_ListInventoryReply, ListInventoryReply__Output as _meridian_replica_v1_ListInventoryReply__Output } from '../../../meridian/replica/v1/ListInventoryReply.js';
import type { ListInventoryRequest as _meridian_replica_v1_ListInventoryRequest, ListInventoryRequest__Output as _meridian_replica_v1_ListInventoryRequest__Output } from '../../../meridian/replica/v1/ListInventoryRequest.js';
import type { ManifestReply as _meridian_replica_v1_ManifestReply, ManifestReply__Output as _meridian_replica_v1_ManifestReply__Output } from '../../../meridian/replica/v1/ManifestReply.js';
import type { PurgeReply as _meridian_replica_v1_PurgeReply, PurgeReply__Output as _meridian_replica_v1_PurgeReply__Output } from '../../../meridian/replica/v1/PurgeReply.js';
import type { PurgeRequest as _meridian_replica_v1_PurgeRequest, PurgeRequest__Output as _meridian_replica_v1_PurgeRequest__Output } from '../../../meridian/replica/v1/PurgeRequest.js';
import type { PutBlobReply as _meridian_replica_v1_PutBlobReply, PutBlobReply__Output as _meridian_replica_v1_PutBlobReply__Output } from '../../../meridian/replica/v1/PutBlobReply.js';
import type { PutBlobRequest as _meridian_replica_v1_PutBlobRequest, PutBlobRequest__Output as _meridian_replica_v1_PutBlobRequest__Output } from '../../../meridian/replica/v1/PutBlobRequest.js';

export interface ReplicaClient extends grpc.Client {
  /**
   * Deletes a tag, a manifest (with every tag naming it) or a blob link, leaving a tombstone.
   * The clocks decide: a manifest an index lists is deleted all the same.
   */
  ApplyDelete(argument: _meridian_replica_v1_ApplyDeleteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  ApplyDelete(argument: _meridian_replica_v1_ApplyDeleteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  ApplyDelete(argument: _meridian_replica_v1_ApplyDeleteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  ApplyDelete(argument: _meridian_replica_v1_ApplyDeleteRequest, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  /**
   * Deletes a tag, a manifest (with every tag naming it) or a blob link, leaving a tombstone.
   * The clocks decide: a manifest an index lists is deleted all the same.
   */
  applyDelete(argument: _meridian_replica_v1_ApplyDeleteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  applyDelete(argument: _meridian_replica_v1_ApplyDeleteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  applyDelete(argument: _meridian_replica_v1_ApplyDeleteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  applyDelete(argument: _meridian_replica_v1_ApplyDeleteRequest, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * Stores a manifest (verified against its digest and the image-spec) and, when `tag` is
   * set, points the tag at it if the write's clock is newer than the tag's. Every blob and
   * child manifest it names must be held first (FAILED_PRECONDITION lists what is missing),
   * but for a child the region knows was deleted (its tombstone).
   */
  ApplyManifest(argument: _meridian_replica_v1_ApplyManifestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  ApplyManifest(argument: _meridian_replica_v1_ApplyManifestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  ApplyManifest(argument: _meridian_replica_v1_ApplyManifestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  ApplyManifest(argument: _meridian_replica_v1_ApplyManifestRequest, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  /**
   * Stores a manifest (verified against its digest and the image-spec) and, when `tag` is
   * set, points the tag at it if the write's clock is newer than the tag's. Every blob and
   * child manifest it names must be held first (FAILED_PRECONDITION lists what is missing),
   * but for a child the region knows was deleted (its tombstone).
   */
  applyManifest(argument: _meridian_replica_v1_ApplyManifestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  applyManifest(argument: _meridian_replica_v1_ApplyManifestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  applyManifest(argument: _meridian_replica_v1_ApplyManifestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  applyManifest(argument: _meridian_replica_v1_ApplyManifestRequest, callback: grpc.requestCallback<_meridian_replica_v1_ApplyReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * Copies one blob into this region straight from `source`, a peer region the control plane
   * lists, with the peer's GetBlob: the bytes cross one hop instead of two (the caller's GetBlob,
   * then its PutBlob here), and nothing relays them. They are received exactly as PutBlob's are
   * (hashed as they arrive, committed and linked into `repository` only if they hash to the
   * digest and add up to the size, one transfer of a blob at a time, ABORTED otherwise), from
   * the verified bytes an interrupted transfer left. A region already holding the blob links it
   * and answers `written` false. The call's status is this region's own outcome; a source that
   * fails (down, not holding the blob, DATA_LOSS) is reported in the reply with what it answered,
   * the bytes it sent kept for the next source to resume from. UNIMPLEMENTED from a region that
   * cannot reach its peers (no control plane): the caller relays the bytes itself then.
   */
  FetchBlob(argument: _meridian_replica_v1_FetchBlobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_FetchBlobReply__Output>): grpc.ClientUnaryCall;
  FetchBlob(argument: _meridian_replica_v1_FetchBlobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_FetchBlobReply__Output>): grpc.ClientUnaryCall;
  FetchBlob(argument: _meridian_replica_v1_FetchBlobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_FetchBlobReply__Output>): grpc.ClientUnaryCall;
  FetchBlob(argument: _meridian_replica_v1_FetchBlobRequest, callback: grpc.requestCallback<_meridian_replica_v1_FetchBlobReply__Output>): grpc.ClientUnaryCall;
  /**
   * Copies one blob into this region straight from `source`, a peer region the control plane
   * lists, with the peer's GetBlob: the bytes cross one hop instead of two (the caller's GetBlob,
   * then its PutBlob here), and nothing relays them. They are received exactly as PutBlob's are
   * (hashed as they arrive, committed and linked into `repository` only if they hash to the
   * digest and add up to the size, one transfer of a blob at a time, ABORTED otherwise), from
   * the verified bytes an interrupted transfer left. A region already holding the blob links it
   * and answers `written` false. The call's status is this region's own outcome; a source that
   * fails (down, not holding the blob, DATA_LOSS) is reported in the reply with what it answered,
   * the bytes it sent kept for the next source to resume from. UNIMPLEMENTED from a region that
   * cannot reach its peers (no control plane): the caller relays the bytes itself then.
   */
  fetchBlob(argument: _meridian_replica_v1_FetchBlobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_FetchBlobReply__Output>): grpc.ClientUnaryCall;
  fetchBlob(argument: _meridian_replica_v1_FetchBlobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_FetchBlobReply__Output>): grpc.ClientUnaryCall;
  fetchBlob(argument: _meridian_replica_v1_FetchBlobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_FetchBlobReply__Output>): grpc.ClientUnaryCall;
  fetchBlob(argument: _meridian_replica_v1_FetchBlobRequest, callback: grpc.requestCallback<_meridian_replica_v1_FetchBlobReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * For each digest, whether the region holds the verified bytes, their size, and whether
   * `repository` links the blob here. Read-only (unlike LinkBlobs): a region asks its peers this
   * before it fills a blob it lacks from the nearest holder (read-through).
   */
  FindBlobs(argument: _meridian_replica_v1_FindBlobsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_FindBlobsReply__Output>): grpc.ClientUnaryCall;
  FindBlobs(argument: _meridian_replica_v1_FindBlobsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_FindBlobsReply__Output>): grpc.ClientUnaryCall;
  FindBlobs(argument: _meridian_replica_v1_FindBlobsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_FindBlobsReply__Output>): grpc.ClientUnaryCall;
  FindBlobs(argument: _meridian_replica_v1_FindBlobsRequest, callback: grpc.requestCallback<_meridian_replica_v1_FindBlobsReply__Output>): grpc.ClientUnaryCall;
  /**
   * For each digest, whether the region holds the verified bytes, their size, and whether
   * `repository` links the blob here. Read-only (unlike LinkBlobs): a region asks its peers this
   * before it fills a blob it lacks from the nearest holder (read-through).
   */
  findBlobs(argument: _meridian_replica_v1_FindBlobsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_FindBlobsReply__Output>): grpc.ClientUnaryCall;
  findBlobs(argument: _meridian_replica_v1_FindBlobsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_FindBlobsReply__Output>): grpc.ClientUnaryCall;
  findBlobs(argument: _meridian_replica_v1_FindBlobsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_FindBlobsReply__Output>): grpc.ClientUnaryCall;
  findBlobs(argument: _meridian_replica_v1_FindBlobsRequest, callback: grpc.requestCallback<_meridian_replica_v1_FindBlobsReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * Sends a blob's bytes from `offset` to its end, as a stream of chunks.
   */
  GetBlob(argument: _meridian_replica_v1_GetBlobRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_meridian_replica_v1_BlobChunk__Output>;
  GetBlob(argument: _meridian_replica_v1_GetBlobRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_meridian_replica_v1_BlobChunk__Output>;
  /**
   * Sends a blob's bytes from `offset` to its end, as a stream of chunks.
   */
  getBlob(argument: _meridian_replica_v1_GetBlobRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_meridian_replica_v1_BlobChunk__Output>;
  getBlob(argument: _meridian_replica_v1_GetBlobRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_meridian_replica_v1_BlobChunk__Output>;
  
  /**
   * A manifest of a repository by digest, or by tag (with the tag's clock).
   */
  GetManifest(argument: _meridian_replica_v1_GetManifestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ManifestReply__Output>): grpc.ClientUnaryCall;
  GetManifest(argument: _meridian_replica_v1_GetManifestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_ManifestReply__Output>): grpc.ClientUnaryCall;
  GetManifest(argument: _meridian_replica_v1_GetManifestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ManifestReply__Output>): grpc.ClientUnaryCall;
  GetManifest(argument: _meridian_replica_v1_GetManifestRequest, callback: grpc.requestCallback<_meridian_replica_v1_ManifestReply__Output>): grpc.ClientUnaryCall;
  /**
   * A manifest of a repository by digest, or by tag (with the tag's clock).
   */
  getManifest(argument: _meridian_replica_v1_GetManifestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ManifestReply__Output>): grpc.ClientUnaryCall;
  getManifest(argument: _meridian_replica_v1_GetManifestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_ManifestReply__Output>): grpc.ClientUnaryCall;
  getManifest(argument: _meridian_replica_v1_GetManifestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ManifestReply__Output>): grpc.ClientUnaryCall;
  getManifest(argument: _meridian_replica_v1_GetManifestRequest, callback: grpc.requestCallback<_meridian_replica_v1_ManifestReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * Whether the region is ready (database and blob store answer), with its name.
   */
  Health(argument: _meridian_replica_v1_HealthRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  Health(argument: _meridian_replica_v1_HealthRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  Health(argument: _meridian_replica_v1_HealthRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  Health(argument: _meridian_replica_v1_HealthRequest, callback: grpc.requestCallback<_meridian_replica_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  /**
   * Whether the region is ready (database and blob store answer), with its name.
   */
  health(argument: _meridian_replica_v1_HealthRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  health(argument: _meridian_replica_v1_HealthRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  health(argument: _meridian_replica_v1_HealthRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  health(argument: _meridian_replica_v1_HealthRequest, callback: grpc.requestCallback<_meridian_replica_v1_HealthReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * For each digest, whether the region holds the bytes; bytes held but not yet linked into
   * `repository` are linked by this call. For a blob not held, `offset` says how many verified
   * bytes of an interrupted PutBlob the region already has, so a sender resumes there.
   */
  LinkBlobs(argument: _meridian_replica_v1_LinkBlobsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_LinkBlobsReply__Output>): grpc.ClientUnaryCall;
  LinkBlobs(argument: _meridian_replica_v1_LinkBlobsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_LinkBlobsReply__Output>): grpc.ClientUnaryCall;
  LinkBlobs(argument: _meridian_replica_v1_LinkBlobsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_LinkBlobsReply__Output>): grpc.ClientUnaryCall;
  LinkBlobs(argument: _meridian_replica_v1_LinkBlobsRequest, callback: grpc.requestCallback<_meridian_replica_v1_LinkBlobsReply__Output>): grpc.ClientUnaryCall;
  /**
   * For each digest, whether the region holds the bytes; bytes held but not yet linked into
   * `repository` are linked by this call. For a blob not held, `offset` says how many verified
   * bytes of an interrupted PutBlob the region already has, so a sender resumes there.
   */
  linkBlobs(argument: _meridian_replica_v1_LinkBlobsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_LinkBlobsReply__Output>): grpc.ClientUnaryCall;
  linkBlobs(argument: _meridian_replica_v1_LinkBlobsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_LinkBlobsReply__Output>): grpc.ClientUnaryCall;
  linkBlobs(argument: _meridian_replica_v1_LinkBlobsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_LinkBlobsReply__Output>): grpc.ClientUnaryCall;
  linkBlobs(argument: _meridian_replica_v1_LinkBlobsRequest, callback: grpc.requestCallback<_meridian_replica_v1_LinkBlobsReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * What the region holds, a page at a time, in a stable order (for backfill and reconciliation).
   */
  ListInventory(argument: _meridian_replica_v1_ListInventoryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ListInventoryReply__Output>): grpc.ClientUnaryCall;
  ListInventory(argument: _meridian_replica_v1_ListInventoryRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_ListInventoryReply__Output>): grpc.ClientUnaryCall;
  ListInventory(argument: _meridian_replica_v1_ListInventoryRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ListInventoryReply__Output>): grpc.ClientUnaryCall;
  ListInventory(argument: _meridian_replica_v1_ListInventoryRequest, callback: grpc.requestCallback<_meridian_replica_v1_ListInventoryReply__Output>): grpc.ClientUnaryCall;
  /**
   * What the region holds, a page at a time, in a stable order (for backfill and reconciliation).
   */
  listInventory(argument: _meridian_replica_v1_ListInventoryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ListInventoryReply__Output>): grpc.ClientUnaryCall;
  listInventory(argument: _meridian_replica_v1_ListInventoryRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_ListInventoryReply__Output>): grpc.ClientUnaryCall;
  listInventory(argument: _meridian_replica_v1_ListInventoryRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_ListInventoryReply__Output>): grpc.ClientUnaryCall;
  listInventory(argument: _meridian_replica_v1_ListInventoryRequest, callback: grpc.requestCallback<_meridian_replica_v1_ListInventoryReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * Deletes what the region holds, a page at a time: its tags, manifests and blob links, then
   * its repositories, then the blobs no repository links any more, with their bytes. For a
   * region being removed from the cluster (the control plane purges only a draining region):
   * nothing of it is replicated, nothing goes into the outbox. Call it again until `done`; a
   * purge broken off is finished by calling it again, and a purged region answers done at once.
   */
  Purge(argument: _meridian_replica_v1_PurgeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_PurgeReply__Output>): grpc.ClientUnaryCall;
  Purge(argument: _meridian_replica_v1_PurgeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_PurgeReply__Output>): grpc.ClientUnaryCall;
  Purge(argument: _meridian_replica_v1_PurgeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_PurgeReply__Output>): grpc.ClientUnaryCall;
  Purge(argument: _meridian_replica_v1_PurgeRequest, callback: grpc.requestCallback<_meridian_replica_v1_PurgeReply__Output>): grpc.ClientUnaryCall;
  /**
   * Deletes what the region holds, a page at a time: its tags, manifests and blob links, then
   * its repositories, then the blobs no repository links any more, with their bytes. For a
   * region being removed from the cluster (the control plane purges only a draining region):
   * nothing of it is replicated, nothing goes into the outbox. Call it again until `done`; a
   * purge broken off is finished by calling it again, and a purged region answers done at once.
   */
  purge(argument: _meridian_replica_v1_PurgeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_PurgeReply__Output>): grpc.ClientUnaryCall;
  purge(argument: _meridian_replica_v1_PurgeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_PurgeReply__Output>): grpc.ClientUnaryCall;
  purge(argument: _meridian_replica_v1_PurgeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_PurgeReply__Output>): grpc.ClientUnaryCall;
  purge(argument: _meridian_replica_v1_PurgeRequest, callback: grpc.requestCallback<_meridian_replica_v1_PurgeReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * Receives one blob. The first message is a BlobHeader, the rest carry bytes in order from
   * header.offset (which must equal the offset LinkBlobs reported). The bytes are hashed as they
   * arrive and committed, then linked into the repository, only if they hash to the digest and
   * add up to the size. Idempotent: a blob already held is acknowledged without its bytes. A
   * broken stream keeps what arrived, and a retry resumes from the reported offset.
   */
  PutBlob(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_PutBlobReply__Output>): grpc.ClientWritableStream<_meridian_replica_v1_PutBlobRequest>;
  PutBlob(metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_PutBlobReply__Output>): grpc.ClientWritableStream<_meridian_replica_v1_PutBlobRequest>;
  PutBlob(options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_PutBlobReply__Output>): grpc.ClientWritableStream<_meridian_replica_v1_PutBlobRequest>;
  PutBlob(callback: grpc.requestCallback<_meridian_replica_v1_PutBlobReply__Output>): grpc.ClientWritableStream<_meridian_replica_v1_PutBlobRequest>;
  /**
   * Receives one blob. The first message is a BlobHeader, the rest carry bytes in order from
   * header.offset (which must equal the offset LinkBlobs reported). The bytes are hashed as they
   * arrive and committed, then linked into the repository, only if they hash to the digest and
   * add up to the size. Idempotent: a blob already held is acknowledged without its bytes. A
   * broken stream keeps what arrived, and a retry resumes from the reported offset.
   */
  putBlob(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_PutBlobReply__Output>): grpc.ClientWritableStream<_meridian_replica_v1_PutBlobRequest>;
  putBlob(metadata: grpc.Metadata, callback: grpc.requestCallback<_meridian_replica_v1_PutBlobReply__Output>): grpc.ClientWritableStream<_meridian_replica_v1_PutBlobRequest>;
  putBlob(options: grpc.CallOptions, callback: grpc.requestCallback<_meridian_replica_v1_PutBlobReply__Output>): grpc.ClientWritableStream<_meridian_replica_v1_PutBlobRequest>;
  putBlob(callback: grpc.requestCallback<_meridian_replica_v1_PutBlobReply__Output>): grpc.ClientWritableStream<_meridian_replica_v1_PutBlobRequest>;
  
}

export interface ReplicaHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Deletes a tag, a manifest (with every tag naming it) or a blob link, leaving a tombstone.
   * The clocks decide: a manifest an index lists is deleted all the same.
   */
  ApplyDelete: grpc.handleUnaryCall<_meridian_replica_v1_ApplyDeleteRequest__Output, _meridian_replica_v1_ApplyReply>;
  
  /**
   * Stores a manifest (verified against its digest and the image-spec) and, when `tag` is
   * set, points the tag at it if the write's clock is newer than the tag's. Every blob and
   * child manifest it names must be held first (FAILED_PRECONDITION lists what is missing),
   * but for a child the region knows was deleted (its tombstone).
   */
  ApplyManifest: grpc.handleUnaryCall<_meridian_replica_v1_ApplyManifestRequest__Output, _meridian_replica_v1_ApplyReply>;
  
  /**
   * Copies one blob into this region straight from `source`, a peer region the control plane
   * lists, with the peer's GetBlob: the bytes cross one hop instead of two (the caller's GetBlob,
   * then its PutBlob here), and nothing relays them. They are received exactly as PutBlob's are
   * (hashed as they arrive, committed and linked into `repository` only if they hash to the
   * digest and add up to the size, one transfer of a blob at a time, ABORTED otherwise), from
   * the verified bytes an interrupted transfer left. A region already holding the blob links it
   * and answers `written` false. The call's status is this region's own outcome; a source that
   * fails (down, not holding the blob, DATA_LOSS) is reported in the reply with what it answered,
   * the bytes it sent kept for the next source to resume from. UNIMPLEMENTED from a region that
   * cannot reach its peers (no control plane): the caller relays the bytes itself then.
   */
  FetchBlob: grpc.handleUnaryCall<_meridian_replica_v1_FetchBlobRequest__Output, _meridian_replica_v1_FetchBlobReply>;
  
  /**
   * For each digest, whether the region holds the verified bytes, their size, and whether
   * `repository` links the blob here. Read-only (unlike LinkBlobs): a region asks its peers this
   * before it fills a blob it lacks from the nearest holder (read-through).
   */
  FindBlobs: grpc.handleUnaryCall<_meridian_replica_v1_FindBlobsRequest__Output, _meridian_replica_v1_FindBlobsReply>;
  
  /**
   * Sends a blob's bytes from `offset` to its end, as a stream of chunks.
   */
  GetBlob: grpc.handleServerStreamingCall<_meridian_replica_v1_GetBlobRequest__Output, _meridian_replica_v1_BlobChunk>;
  
  /**
   * A manifest of a repository by digest, or by tag (with the tag's clock).
   */
  GetManifest: grpc.handleUnaryCall<_meridian_replica_v1_GetManifestRequest__Output, _meridian_replica_v1_ManifestReply>;
  
  /**
   * Whether the region is ready (database and blob store answer), with its name.
   */
  Health: grpc.handleUnaryCall<_meridian_replica_v1_HealthRequest__Output, _meridian_replica_v1_HealthReply>;
  
  /**
   * For each digest, whether the region holds the bytes; bytes held but not yet linked into
   * `repository` are linked by this call. For a blob not held, `offset` says how many verified
   * bytes of an interrupted PutBlob the region already has, so a sender resumes there.
   */
  LinkBlobs: grpc.handleUnaryCall<_meridian_replica_v1_LinkBlobsRequest__Output, _meridian_replica_v1_LinkBlobsReply>;
  
  /**
   * What the region holds, a page at a time, in a stable order (for backfill and reconciliation).
   */
  ListInventory: grpc.handleUnaryCall<_meridian_replica_v1_ListInventoryRequest__Output, _meridian_replica_v1_ListInventoryReply>;
  
  /**
   * Deletes what the region holds, a page at a time: its tags, manifests and blob links, then
   * its repositories, then the blobs no repository links any more, with their bytes. For a
   * region being removed from the cluster (the control plane purges only a draining region):
   * nothing of it is replicated, nothing goes into the outbox. Call it again until `done`; a
   * purge broken off is finished by calling it again, and a purged region answers done at once.
   */
  Purge: grpc.handleUnaryCall<_meridian_replica_v1_PurgeRequest__Output, _meridian_replica_v1_PurgeReply>;
  
  /**
   * Receives one blob. The first message is a BlobHeader, the rest carry bytes in order from
   * header.offset (which must equal the offset LinkBlobs reported). The bytes are hashed as they
   * arrive and committed, then linked into the repository, only if they hash to the digest and
   * add up to the size. Idempotent: a blob already held is acknowledged without its bytes. A
   * broken stream keeps what arrived, and a retry resumes from the reported offset.
   */
  PutBlob: grpc.handleClientStreamingCall<_meridian_replica_v1_PutBlobRequest__Output, _meridian_replica_v1_PutBlobReply>;
  
}

export interface ReplicaDefinition extends grpc.ServiceDefinition {
  ApplyDelete: MethodDefinition<_meridian_replica_v1_ApplyDeleteRequest, _meridian_replica_v1_ApplyReply, _meridian_replica_v1_ApplyDeleteRequest__Output, _meridian_replica_v1_ApplyReply__Output>
  ApplyManifest: MethodDefinition<_meridian_replica_v1_ApplyManifestRequest, _meridian_replica_v1_ApplyReply, _meridian_replica_v1_ApplyManifestRequest__Output, _meridian_replica_v1_ApplyReply__Output>
  FetchBlob: MethodDefinition<_meridian_replica_v1_FetchBlobRequest, _meridian_replica_v1_FetchBlobReply, _meridian_replica_v1_FetchBlobRequest__Output, _meridian_replica_v1_FetchBlobReply__Output>
  FindBlobs: MethodDefinition<_meridian_replica_v1_FindBlobsRequest, _meridian_replica_v1_FindBlobsReply, _meridian_replica_v1_FindBlobsRequest__Output, _meridian_replica_v1_FindBlobsReply__Output>
  GetBlob: MethodDefinition<_meridian_replica_v1_GetBlobRequest, _meridian_replica_v1_BlobChunk, _meridian_replica_v1_GetBlobRequest__Output, _meridian_replica_v1_BlobChunk__Output>
  GetManifest: MethodDefinition<_meridian_replica_v1_GetManifestRequest, _meridian_replica_v1_ManifestReply, _meridian_replica_v1_GetManifestRequest__Output, _meridian_replica_v1_ManifestReply__Output>
  Health: MethodDefinition<_meridian_replica_v1_HealthRequest, _meridian_replica_v1_HealthReply, _meridian_replica_v1_HealthRequest__Output, _meridian_replica_v1_HealthReply__Output>
  LinkBlobs: MethodDefinition<_meridian_replica_v1_LinkBlobsRequest, _meridian_replica_v1_LinkBlobsReply, _meridian_replica_v1_LinkBlobsRequest__Output, _meridian_replica_v1_LinkBlobsReply__Output>
  ListInventory: MethodDefinition<_meridian_replica_v1_ListInventoryRequest, _meridian_replica_v1_ListInventoryReply, _meridian_replica_v1_ListInventoryRequest__Output, _meridian_replica_v1_ListInventoryReply__Output>
  Purge: MethodDefinition<_meridian_replica_v1_PurgeRequest, _meridian_replica_v1_PurgeReply, _meridian_replica_v1_PurgeRequest__Output, _meridian_replica_v1_PurgeReply__Output>
  PutBlob: MethodDefinition<_meridian_replica_v1_PutBlobRequest, _meridian_replica_v1_PutBlobReply, _meridian_replica_v1_PutBlobRequest__Output, _meridian_replica_v1_PutBlobReply__Output>
}

// Original file: proto/meridian/replica/v1/replica.proto

import type { BlobHolding as _meridian_replica_v1_BlobHolding, BlobHolding__Output as _meridian_replica_v1_BlobHolding__Output } from '../../../meridian/replica/v1/BlobHolding.js';

export interface LinkBlobsReply {
  'blobs'?: (_meridian_replica_v1_BlobHolding)[];
}

export interface LinkBlobsReply__Output {
  'blobs': (_meridian_replica_v1_BlobHolding__Output)[];
}

// Original file: proto/meridian/replica/v1/replica.proto

import type { BlobPresence as _meridian_replica_v1_BlobPresence, BlobPresence__Output as _meridian_replica_v1_BlobPresence__Output } from '../../../meridian/replica/v1/BlobPresence.js';

export interface FindBlobsReply {
  'blobs'?: (_meridian_replica_v1_BlobPresence)[];
}

export interface FindBlobsReply__Output {
  'blobs': (_meridian_replica_v1_BlobPresence__Output)[];
}

// Original file: proto/meridian/replica/v1/replica.proto

import type { BlobRef as _meridian_replica_v1_BlobRef, BlobRef__Output as _meridian_replica_v1_BlobRef__Output } from '../../../meridian/replica/v1/BlobRef.js';

export interface LinkBlobsRequest {
  'repository'?: (string);
  'blobs'?: (_meridian_replica_v1_BlobRef)[];
}

export interface LinkBlobsRequest__Output {
  'repository': (string);
  'blobs': (_meridian_replica_v1_BlobRef__Output)[];
}

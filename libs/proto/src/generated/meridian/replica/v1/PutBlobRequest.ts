// Original file: proto/meridian/replica/v1/replica.proto

import type { BlobHeader as _meridian_replica_v1_BlobHeader, BlobHeader__Output as _meridian_replica_v1_BlobHeader__Output } from '../../../meridian/replica/v1/BlobHeader.js';

export interface PutBlobRequest {
  'header'?: (_meridian_replica_v1_BlobHeader | null);
  'chunk'?: (Buffer | Uint8Array | string);
  'part'?: "header"|"chunk";
}

export interface PutBlobRequest__Output {
  'header'?: (_meridian_replica_v1_BlobHeader__Output | null);
  'chunk'?: (Buffer);
  'part'?: "header"|"chunk";
}

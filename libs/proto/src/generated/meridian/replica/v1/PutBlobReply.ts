// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface PutBlobReply {
  'digest'?: (string);
  'size'?: (number | string | Long);
  /**
   * False when the region already held the blob and no byte was written.
   */
  'written'?: (boolean);
}

export interface PutBlobReply__Output {
  'digest': (string);
  'size': (string);
  /**
   * False when the region already held the blob and no byte was written.
   */
  'written': (boolean);
}

// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface BlobHolding {
  'digest'?: (string);
  /**
   * True when the region holds the verified bytes (and has now linked them).
   */
  'held'?: (boolean);
  /**
   * When not held: verified bytes already received by an interrupted PutBlob.
   */
  'offset'?: (number | string | Long);
}

export interface BlobHolding__Output {
  'digest': (string);
  /**
   * True when the region holds the verified bytes (and has now linked them).
   */
  'held': (boolean);
  /**
   * When not held: verified bytes already received by an interrupted PutBlob.
   */
  'offset': (string);
}

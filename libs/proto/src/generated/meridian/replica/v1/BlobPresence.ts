// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface BlobPresence {
  'digest'?: (string);
  /**
   * True when the region holds the verified bytes (recorded present, its file of the recorded size).
   */
  'held'?: (boolean);
  /**
   * When held: the blob's size.
   */
  'size'?: (number | string | Long);
  /**
   * True when the repository of the request links the blob in this region.
   */
  'linked'?: (boolean);
}

export interface BlobPresence__Output {
  'digest': (string);
  /**
   * True when the region holds the verified bytes (recorded present, its file of the recorded size).
   */
  'held': (boolean);
  /**
   * When held: the blob's size.
   */
  'size': (string);
  /**
   * True when the repository of the request links the blob in this region.
   */
  'linked': (boolean);
}

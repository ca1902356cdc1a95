// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface FetchBlobReply {
  /**
   * False when the region already held the blob and no byte was written.
   */
  'written'?: (boolean);
  /**
   * Blob bytes this call took from the source (also when the source failed part-way).
   */
  'received'?: (number | string | Long);
  /**
   * When the source failed: its gRPC status code (never OK) and message. The blob is then not
   * held; LinkBlobs reports how far the transfer got.
   */
  'sourceCode'?: (number);
  'sourceDetail'?: (string);
}

export interface FetchBlobReply__Output {
  /**
   * False when the region already held the blob and no byte was written.
   */
  'written': (boolean);
  /**
   * Blob bytes this call took from the source (also when the source failed part-way).
   */
  'received': (string);
  /**
   * When the source failed: its gRPC status code (never OK) and message. The blob is then not
   * held; LinkBlobs reports how far the transfer got.
   */
  'sourceCode': (number);
  'sourceDetail': (string);
}

// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface BlobChunk {
  'data'?: (Buffer | Uint8Array | string);
  /**
   * Set on the first chunk: the blob's whole size.
   */
  'size'?: (number | string | Long);
}

export interface BlobChunk__Output {
  'data': (Buffer);
  /**
   * Set on the first chunk: the blob's whole size.
   */
  'size': (string);
}

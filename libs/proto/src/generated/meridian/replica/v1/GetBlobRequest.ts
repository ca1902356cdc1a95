// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface GetBlobRequest {
  'digest'?: (string);
  'offset'?: (number | string | Long);
  /**
   * The repository the blob is read through; empty reads any blob the region holds.
   */
  'repository'?: (string);
}

export interface GetBlobRequest__Output {
  'digest': (string);
  'offset': (string);
  /**
   * The repository the blob is read through; empty reads any blob the region holds.
   */
  'repository': (string);
}

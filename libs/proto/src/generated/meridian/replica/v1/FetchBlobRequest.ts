// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface FetchBlobRequest {
  'repository'?: (string);
  'digest'?: (string);
  'size'?: (number | string | Long);
  /**
   * The region to read from, by the name the control plane lists it under.
   */
  'source'?: (string);
}

export interface FetchBlobRequest__Output {
  'repository': (string);
  'digest': (string);
  'size': (string);
  /**
   * The region to read from, by the name the control plane lists it under.
   */
  'source': (string);
}

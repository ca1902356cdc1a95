// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface BlobHeader {
  'repository'?: (string);
  'digest'?: (string);
  'size'?: (number | string | Long);
  'offset'?: (number | string | Long);
}

export interface BlobHeader__Output {
  'repository': (string);
  'digest': (string);
  'size': (string);
  'offset': (string);
}

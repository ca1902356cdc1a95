// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface BlobRef {
  'digest'?: (string);
  'size'?: (number | string | Long);
}

export interface BlobRef__Output {
  'digest': (string);
  'size': (string);
}

// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface InventoryBlob {
  'repository'?: (string);
  'digest'?: (string);
  'size'?: (number | string | Long);
  /**
   * "present", or "pending" (the region should hold it but lacks the bytes).
   */
  'state'?: (string);
}

export interface InventoryBlob__Output {
  'repository': (string);
  'digest': (string);
  'size': (string);
  /**
   * "present", or "pending" (the region should hold it but lacks the bytes).
   */
  'state': (string);
}

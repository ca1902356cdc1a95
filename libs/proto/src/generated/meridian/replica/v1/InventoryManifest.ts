// Original file: proto/meridian/replica/v1/replica.proto

import type { Clock as _meridian_replica_v1_Clock, Clock__Output as _meridian_replica_v1_Clock__Output } from '../../../meridian/replica/v1/Clock.js';
import type { Long } from '@grpc/proto-loader';

export interface InventoryManifest {
  'repository'?: (string);
  'digest'?: (string);
  'mediaType'?: (string);
  'size'?: (number | string | Long);
  'clock'?: (_meridian_replica_v1_Clock | null);
}

export interface InventoryManifest__Output {
  'repository': (string);
  'digest': (string);
  'mediaType': (string);
  'size': (string);
  'clock': (_meridian_replica_v1_Clock__Output | null);
}

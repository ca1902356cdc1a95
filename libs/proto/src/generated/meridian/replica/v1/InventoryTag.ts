// Original file: proto/meridian/replica/v1/replica.proto

import type { Clock as _meridian_replica_v1_Clock, Clock__Output as _meridian_replica_v1_Clock__Output } from '../../../meridian/replica/v1/Clock.js';

export interface InventoryTag {
  'repository'?: (string);
  'tag'?: (string);
  'digest'?: (string);
  'clock'?: (_meridian_replica_v1_Clock | null);
}

export interface InventoryTag__Output {
  'repository': (string);
  'tag': (string);
  'digest': (string);
  'clock': (_meridian_replica_v1_Clock__Output | null);
}

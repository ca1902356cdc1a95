// Original file: proto/meridian/replica/v1/replica.proto

import type { Clock as _meridian_replica_v1_Clock, Clock__Output as _meridian_replica_v1_Clock__Output } from '../../../meridian/replica/v1/Clock.js';

// Original file: proto/meridian/replica/v1/replica.proto

export const _meridian_replica_v1_ApplyDeleteRequest_Kind = {
  KIND_UNSPECIFIED: 'KIND_UNSPECIFIED',
  TAG: 'TAG',
  MANIFEST: 'MANIFEST',
  BLOB: 'BLOB',
} as const;

export type _meridian_replica_v1_ApplyDeleteRequest_Kind =
  | 'KIND_UNSPECIFIED'
  | 0
  | 'TAG'
  | 1
  | 'MANIFEST'
  | 2
  | 'BLOB'
  | 3

export type _meridian_replica_v1_ApplyDeleteRequest_Kind__Output = typeof _meridian_replica_v1_ApplyDeleteRequest_Kind[keyof typeof _meridian_replica_v1_ApplyDeleteRequest_Kind]

export interface ApplyDeleteRequest {
  'kind'?: (_meridian_replica_v1_ApplyDeleteRequest_Kind);
  'repository'?: (string);
  /**
   * The tag (TAG) or the digest (MANIFEST, BLOB).
   */
  'name'?: (string);
  'clock'?: (_meridian_replica_v1_Clock | null);
}

export interface ApplyDeleteRequest__Output {
  'kind': (_meridian_replica_v1_ApplyDeleteRequest_Kind__Output);
  'repository': (string);
  /**
   * The tag (TAG) or the digest (MANIFEST, BLOB).
   */
  'name': (string);
  'clock': (_meridian_replica_v1_Clock__Output | null);
}

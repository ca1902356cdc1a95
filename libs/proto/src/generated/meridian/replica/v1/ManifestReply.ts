// Original file: proto/meridian/replica/v1/replica.proto

import type { Clock as _meridian_replica_v1_Clock, Clock__Output as _meridian_replica_v1_Clock__Output } from '../../../meridian/replica/v1/Clock.js';

export interface ManifestReply {
  'digest'?: (string);
  'mediaType'?: (string);
  'payload'?: (Buffer | Uint8Array | string);
  /**
   * The clock of the manifest's write, and of the tag's when asked by tag.
   */
  'clock'?: (_meridian_replica_v1_Clock | null);
  'tagClock'?: (_meridian_replica_v1_Clock | null);
}

export interface ManifestReply__Output {
  'digest': (string);
  'mediaType': (string);
  'payload': (Buffer);
  /**
   * The clock of the manifest's write, and of the tag's when asked by tag.
   */
  'clock': (_meridian_replica_v1_Clock__Output | null);
  'tagClock': (_meridian_replica_v1_Clock__Output | null);
}

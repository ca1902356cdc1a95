// Original file: proto/meridian/replica/v1/replica.proto

import type { PurgeCounts as _meridian_replica_v1_PurgeCounts, PurgeCounts__Output as _meridian_replica_v1_PurgeCounts__Output } from '../../../meridian/replica/v1/PurgeCounts.js';
import type { Long } from '@grpc/proto-loader';

export interface PurgeReply {
  /**
   * What this call deleted (with dry_run: what the region holds).
   */
  'counts'?: (_meridian_replica_v1_PurgeCounts | null);
  /**
   * The region's changes in its outbox when the call began.
   */
  'unrelayed'?: (number | string | Long);
  /**
   * The region holds nothing more.
   */
  'done'?: (boolean);
}

export interface PurgeReply__Output {
  /**
   * What this call deleted (with dry_run: what the region holds).
   */
  'counts': (_meridian_replica_v1_PurgeCounts__Output | null);
  /**
   * The region's changes in its outbox when the call began.
   */
  'unrelayed': (string);
  /**
   * The region holds nothing more.
   */
  'done': (boolean);
}

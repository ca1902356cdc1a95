// Original file: proto/meridian/replica/v1/replica.proto

import type { Long } from '@grpc/proto-loader';

export interface PurgeCounts {
  'repositories'?: (number | string | Long);
  'manifests'?: (number | string | Long);
  'tags'?: (number | string | Long);
  'blobLinks'?: (number | string | Long);
  'blobs'?: (number | string | Long);
  /**
   * The bytes of those blobs.
   */
  'bytes'?: (number | string | Long);
  /**
   * Outbox changes discarded (discard_unrelayed).
   */
  'discardedChanges'?: (number | string | Long);
}

export interface PurgeCounts__Output {
  'repositories': (string);
  'manifests': (string);
  'tags': (string);
  'blobLinks': (string);
  'blobs': (string);
  /**
   * The bytes of those blobs.
   */
  'bytes': (string);
  /**
   * Outbox changes discarded (discard_unrelayed).
   */
  'discardedChanges': (string);
}

// Original file: proto/meridian/replica/v1/replica.proto

import type { Clock as _meridian_replica_v1_Clock, Clock__Output as _meridian_replica_v1_Clock__Output } from '../../../meridian/replica/v1/Clock.js';

export interface ApplyManifestRequest {
  'repository'?: (string);
  'digest'?: (string);
  'mediaType'?: (string);
  'payload'?: (Buffer | Uint8Array | string);
  /**
   * Optional: the tag this write points at the manifest.
   */
  'tag'?: (string);
  'clock'?: (_meridian_replica_v1_Clock | null);
  /**
   * For an edge region (one that keeps blobs only as a cache): the blobs the manifest names need
   * not be held; those missing are recorded pending with the sizes the manifest gives, and come
   * on demand (read-through).
   */
  'blobsOnDemand'?: (boolean);
}

export interface ApplyManifestRequest__Output {
  'repository': (string);
  'digest': (string);
  'mediaType': (string);
  'payload': (Buffer);
  /**
   * Optional: the tag this write points at the manifest.
   */
  'tag': (string);
  'clock': (_meridian_replica_v1_Clock__Output | null);
  /**
   * For an edge region (one that keeps blobs only as a cache): the blobs the manifest names need
   * not be held; those missing are recorded pending with the sizes the manifest gives, and come
   * on demand (read-through).
   */
  'blobsOnDemand': (boolean);
}

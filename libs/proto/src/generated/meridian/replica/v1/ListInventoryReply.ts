// Original file: proto/meridian/replica/v1/replica.proto

import type { InventoryManifest as _meridian_replica_v1_InventoryManifest, InventoryManifest__Output as _meridian_replica_v1_InventoryManifest__Output } from '../../../meridian/replica/v1/InventoryManifest.js';
import type { InventoryTag as _meridian_replica_v1_InventoryTag, InventoryTag__Output as _meridian_replica_v1_InventoryTag__Output } from '../../../meridian/replica/v1/InventoryTag.js';
import type { InventoryBlob as _meridian_replica_v1_InventoryBlob, InventoryBlob__Output as _meridian_replica_v1_InventoryBlob__Output } from '../../../meridian/replica/v1/InventoryBlob.js';
import type { Long } from '@grpc/proto-loader';

export interface ListInventoryReply {
  'manifests'?: (_meridian_replica_v1_InventoryManifest)[];
  'tags'?: (_meridian_replica_v1_InventoryTag)[];
  'blobs'?: (_meridian_replica_v1_InventoryBlob)[];
  /**
   * Empty on the last page.
   */
  'nextPageToken'?: (string);
  /**
   * On the last page: how many of the region's own changes wait in its outbox, not yet stored
   * by the control plane, counted after the page was read. 0 means every write the pages show
   * is in the global catalog, so the catalog may judge what the region should not hold.
   */
  'unrelayed'?: (number | string | Long);
}

export interface ListInventoryReply__Output {
  'manifests': (_meridian_replica_v1_InventoryManifest__Output)[];
  'tags': (_meridian_replica_v1_InventoryTag__Output)[];
  'blobs': (_meridian_replica_v1_InventoryBlob__Output)[];
  /**
   * Empty on the last page.
   */
  'nextPageToken': (string);
  /**
   * On the last page: how many of the region's own changes wait in its outbox, not yet stored
   * by the control plane, counted after the page was read. 0 means every write the pages show
   * is in the global catalog, so the catalog may judge what the region should not hold.
   */
  'unrelayed': (string);
}

/**
 * What a region's purge (replica.proto `Purge`) deleted, or with a dry run what the region holds,
 * as numbers: the region's applier counts in it, the control plane adds the steps up in it.
 */
export interface PurgeCounts {
  repositories: number;
  manifests: number;
  tags: number;
  blobLinks: number;
  blobs: number;
  /** The bytes of those blobs. */
  bytes: number;
  /** The region's own changes, never relayed, discarded on the operator's word. */
  discardedChanges: number;
}

/** One Purge call's answer. */
export interface PurgeStep {
  counts: PurgeCounts;
  /** The region's changes in its outbox, not yet stored by the control plane, when the call began. */
  unrelayed: number;
  /** The region holds nothing more. */
  done: boolean;
}

/** Every count at 0, as a new object. */
export function noPurgeCounts(): PurgeCounts {
  return { repositories: 0, manifests: 0, tags: 0, blobLinks: 0, blobs: 0, bytes: 0, discardedChanges: 0 };
}

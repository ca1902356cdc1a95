import type { BlobStore } from '@meridian/blobstore';
import type { Metadata } from '@meridian/metadata';
import { BlobService, type RegistryLogger } from './blobs.js';
import { UploadService } from './uploads.js';
import { ManifestService } from './manifests.js';
import { ContentDiscovery } from './content-discovery.js';
import type { LookupCache } from './lookup-cache.js';
import type { UploadStateSigner } from './upload-state.js';
import { ReadThrough, type ReadThroughMetrics, type RegionPeers } from './read-through.js';

export interface RegistryDependencies {
  metadata: Metadata;
  blobStore: BlobStore;
  cache: LookupCache;
  uploadSigner: UploadStateSigner;
  /** Where the domain layer reports what an operator must hear of (a blob whose bytes are lost). */
  logger: RegistryLogger;
  /** This region's name: the origin stamped on every write made here. */
  region: string;
  /** The other regions of the cluster; without them (a region on its own) a miss is a miss. */
  peers?: RegionPeers;
  readThroughMetrics?: ReadThroughMetrics;
}

/** The domain layer of one region: no HTTP here, only stores and OCI rules. */
export interface Registry {
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  discovery: ContentDiscovery;
}

export function createRegistry(deps: RegistryDependencies): Registry {
  // The one judge of whether the region holds a blob, for mounts and manifest pushes too.
  const readThrough = deps.peers
    ? new ReadThrough(deps.peers, deps.metadata, deps.blobStore, deps.cache, deps.logger, deps.readThroughMetrics)
    : undefined;
  const blobs = new BlobService(deps.metadata, deps.blobStore, deps.cache, deps.logger, deps.region, readThrough);
  return {
    blobs,
    uploads: new UploadService(deps.metadata, deps.blobStore, deps.uploadSigner, blobs, deps.region),
    manifests: new ManifestService(deps.metadata, deps.cache, deps.region, blobs, readThrough),
    discovery: new ContentDiscovery(deps.metadata, deps.cache),
  };
}

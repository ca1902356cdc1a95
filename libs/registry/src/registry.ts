import type { BlobStore } from '@meridian/blobstore';
import type { Metadata } from '@meridian/metadata';
import { BlobService } from './blobs.js';
import { UploadService } from './uploads.js';
import { ManifestService } from './manifests.js';
import { ContentDiscovery } from './content-discovery.js';
import type { LookupCache } from './lookup-cache.js';
import type { UploadStateSigner } from './upload-state.js';

export interface RegistryDependencies {
  metadata: Metadata;
  blobStore: BlobStore;
  cache: LookupCache;
  uploadSigner: UploadStateSigner;
}

/** The domain layer of one region: no HTTP here, only stores and OCI rules. */
export interface Registry {
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  discovery: ContentDiscovery;
}

export function createRegistry(deps: RegistryDependencies): Registry {
  return {
    blobs: new BlobService(deps.metadata, deps.blobStore, deps.cache),
    uploads: new UploadService(deps.metadata, deps.blobStore, deps.uploadSigner),
    manifests: new ManifestService(deps.metadata, deps.cache),
    discovery: new ContentDiscovery(deps.metadata, deps.cache),
  };
}

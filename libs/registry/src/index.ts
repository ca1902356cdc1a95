// The domain layer of one region: OCI rules over the blob store and the regional metadata.
// No HTTP and no SQL here; the gateway, the replica server and the replication worker share it.
export * from './registry.js';
export * from './blobs.js';
export * from './uploads.js';
export * from './manifests.js';
export * from './content-discovery.js';
export * from './lookup-cache.js';
export * from './upload-state.js';
export * from './replica.js';
export * from './read-through.js';
export * from './actor.js';

export * from './driver.js';
export * from './fs-driver.js';
export * from './blob-store.js';
export { paths, isUploadId } from './paths.js';

import type { StorageDriver } from './driver.js';
import { FilesystemDriver } from './fs-driver.js';

/**
 * Drivers by name, chosen explicitly from config (CONTRIBUTING.md, 'Wiring': no registration by
 * import side effect). The planned S3-compatible driver joins this map.
 */
export const STORAGE_DRIVERS = {
  filesystem: (options: { rootDirectory: string; directWrites: boolean; onDirectWritesOff?: (reason: string) => void }): StorageDriver =>
    new FilesystemDriver(options.rootDirectory, {
      // Off means no O_DIRECT at all: nor the reads of files other gateways wrote directly.
      ...(options.directWrites ? {} : { directWriteSlices: 0, directReadSlices: 0 }),
      ...(options.onDirectWritesOff ? { onDirectWritesOff: options.onDirectWritesOff } : {}),
    }),
} as const;

export type StorageDriverName = keyof typeof STORAGE_DRIVERS;

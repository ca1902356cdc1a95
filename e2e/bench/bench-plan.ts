/**
 * How much work each scenario does. The full plan is sized to finish in well under ten minutes
 * with Meridian, Distribution and nginx on a two-core machine; the quick plan is a smoke run of
 * the same code paths in under a minute.
 */
export interface BenchPlan {
  /** Each scenario runs this many times per target, targets interleaved; the median is reported. */
  rounds: number;
  /** Each blob push/pull run repeats its batch until at least this long has passed. */
  blobMinSeconds: number;
  smallBlobs: { count: number; sizeBytes: number; concurrency: number };
  largeBlobs: { count: number; sizeBytes: number; concurrency: number };
  smallImages: SmallImagePlan;
  /** The small images the real-client patterns push: the held-out runs' 1 KiB layers. */
  clientImages: SmallImagePlan;
  /** wrk settings for the request-rate scenarios (manifest GET, blob HEAD). */
  requestRate: { connections: number; threads: number; warmupSeconds: number; durationSeconds: number };
  tagWalk: { tags: number; pageSize: number; concurrency: number; durationSeconds: number; setupConcurrency: number };
}

export interface SmallImagePlan {
  count: number;
  concurrency: number;
  layers: number;
  layerBytes: number;
  /** Images are spread over this many repositories. */
  repos: number;
}

const MiB = 2 ** 20;

export const fullPlan: BenchPlan = {
  rounds: 3,
  blobMinSeconds: 4,
  smallBlobs: { count: 64, sizeBytes: MiB, concurrency: 8 },
  largeBlobs: { count: 4, sizeBytes: 256 * MiB, concurrency: 2 },
  smallImages: { count: 600, concurrency: 8, layers: 3, layerBytes: 4 * 1024, repos: 8 },
  clientImages: { count: 600, concurrency: 8, layers: 3, layerBytes: 1024, repos: 8 },
  // One wrk thread: on two cores a second one would only take CPU from the server.
  requestRate: { connections: 64, threads: 1, warmupSeconds: 2, durationSeconds: 10 },
  tagWalk: { tags: 1000, pageSize: 100, concurrency: 32, durationSeconds: 10, setupConcurrency: 8 },
};

export const quickPlan: BenchPlan = {
  rounds: 1,
  blobMinSeconds: 0.5,
  smallBlobs: { count: 32, sizeBytes: MiB, concurrency: 8 },
  largeBlobs: { count: 2, sizeBytes: 64 * MiB, concurrency: 2 },
  smallImages: { count: 60, concurrency: 8, layers: 3, layerBytes: 4 * 1024, repos: 4 },
  clientImages: { count: 60, concurrency: 8, layers: 3, layerBytes: 1024, repos: 4 },
  requestRate: { connections: 64, threads: 1, warmupSeconds: 1, durationSeconds: 3 },
  tagWalk: { tags: 300, pageSize: 100, concurrency: 4, durationSeconds: 3, setupConcurrency: 8 },
};

/** "1 MiB", "256 MiB", "4 KiB": sizes as the figure labels show them. */
export function formatSize(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

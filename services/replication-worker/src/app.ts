import type { Logger } from 'pino';
import { CopiesUnderWay } from './blob-copy.js';
import type { WorkerConfig } from './config.js';
import { ControlPlaneClient } from './control-plane-client.js';
import { JobRouter } from './jobs/index.js';
import { createReplicateHandler } from './jobs/replicate.js';
import { RegionDirectory } from './region-directory.js';
import { RegionLimiter } from './region-limiter.js';
import { ReplicaPeers } from './replica-peer.js';
import { QueueWorker } from './worker.js';

export interface ReplicationWorker {
  /** Connects to Redis and starts taking jobs. */
  start(): Promise<void>;
  /** Stops taking jobs, lets running ones finish within the shutdown grace, hands the rest back, closes connections. */
  stop(): Promise<void>;
  /** The per-region bound, for logs and tests. */
  readonly limiter: RegionLimiter;
}

/**
 * The composition root (CONTRIBUTING.md, 'Wiring'): control-plane client, region directory,
 * gRPC peers, the per-region limiter and the copies under way, the job handlers, then the queue
 * worker, in that order.
 */
export function createApp(config: WorkerConfig, logger: Logger): ReplicationWorker {
  const controlPlane = new ControlPlaneClient(config.controlPlaneUrl);
  const regions = new RegionDirectory(controlPlane);
  const peers = new ReplicaPeers();
  const limiter = new RegionLimiter(config.regionConcurrency);
  const copies = new CopiesUnderWay();
  const router = new JobRouter([createReplicateHandler({ regions, peers, limiter, copies, controlPlane })]);
  const worker = new QueueWorker({
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    concurrency: config.workerConcurrency,
    router,
    logger,
  });
  return {
    limiter,
    start: () => worker.start(),
    async stop() {
      await worker.stop(config.shutdownGraceMs);
      peers.close();
    },
  };
}

import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type { Logger } from 'pino';
import { CONTROL_PLANE_AUDIENCE, ServiceTokenIssuer } from '@meridian/auth';
import { ReplicaDialer, createClusterHttp, replicaChannelCredentials } from '@meridian/proto';
import { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import { clusterCallTraceHeaders } from '@meridian/telemetry';
import { traceContextInterceptor } from '@meridian/telemetry/grpc';
import { CopiesUnderWay } from './blob-copy.js';
import type { WorkerConfig } from './config.js';
import { ControlPlaneClient } from './control-plane-client.js';
import { JobRouter } from './jobs/index.js';
import { createReplicateHandler } from './jobs/replicate.js';
import { RegionDirectory } from './region-directory.js';
import { RegionLimiter } from './region-limiter.js';
import { ReplicaPeers } from './replica-peer.js';
import { SharedReads } from './shared-reads.js';
import { QueueWorker } from './worker.js';
import { createWorkerMetrics } from './metrics.js';
import { createWorkerServer } from './http.js';

export interface ReplicationWorker {
  /** Listens on config.host:config.port (/metrics, /healthz, /readyz), connects to Redis and starts taking jobs. */
  start(): Promise<void>;
  /** The URL of /metrics and the health endpoints, once started. */
  readonly url: string | undefined;
  /** Stops taking jobs, lets running ones finish within the shutdown grace, hands the rest back, closes connections. */
  stop(): Promise<void>;
  /** The per-region bound, for logs and tests. */
  readonly limiter: RegionLimiter;
  /** The source reads under way, for logs and tests. */
  readonly reads: SharedReads;
}

/**
 * The composition root (CONTRIBUTING.md, 'Wiring'): control-plane client, region directory,
 * gRPC peers, the per-region limiter, the copies and source reads under way, the job handlers,
 * then the queue worker, in that order.
 */
export function createApp(config: WorkerConfig, logger: Logger): ReplicationWorker {
  const serviceTokens = new ServiceTokenIssuer(config.clusterSecret, 'replication-worker');
  // The control plane's admin API asks for a service token when its MERIDIAN_AUTH is on.
  const ca = config.tlsCaFile ? readPem(config.tlsCaFile, 'MERIDIAN_TLS_CA') : undefined;
  const certificate = config.tls ? { cert: readPem(config.tls.certFile, 'MERIDIAN_TLS_CERT'), key: readPem(config.tls.keyFile, 'MERIDIAN_TLS_KEY') } : undefined;
  // The control plane's admin API and the regions' replica servers are trusted through the same authority.
  const clusterHttp = createClusterHttp(ca ? { ca } : {});
  const controlPlane = new ControlPlaneClient(new ControlPlaneHttp({ url: config.controlPlaneUrl, fetch: clusterHttp.fetch, headers: async () => ({ ...clusterCallTraceHeaders(), authorization: `Bearer ${await serviceTokens.token(CONTROL_PLANE_AUDIENCE)}` }) }));
  const regions = new RegionDirectory(controlPlane);
  const peers = new ReplicaPeers(
    new ReplicaDialer({
      tokens: serviceTokens,
      credentials: replicaChannelCredentials(ca),
      interceptors: [traceContextInterceptor],
    }),
  );
  const limiter = new RegionLimiter(config.regionConcurrency);
  const copies = new CopiesUnderWay();
  const reads = new SharedReads();
  const metrics = createWorkerMetrics();
  const router = new JobRouter([createReplicateHandler({ regions, peers, limiter, copies, reads, controlPlane, metrics })]);
  const worker = new QueueWorker({
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    concurrency: config.workerConcurrency,
    router,
    logger,
  });
  const server = createWorkerServer({ metrics: metrics.metrics, checks: { redis: () => worker.ping(), 'control-plane': () => controlPlane.ready() }, logger, ...(certificate ? { certificate } : {}) });
  let url: string | undefined;
  return {
    limiter,
    reads,
    get url() {
      return url;
    },
    async start() {
      url = await listen(server, config.host, config.port, certificate ? 'https' : 'http');
      await worker.start();
    },
    async stop() {
      await worker.stop(config.shutdownGraceMs);
      peers.close();
      await clusterHttp.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Binds host:port; resolves with the base URL. A port in use fails the start naming the setting. */
function listen(server: http.Server, host: string, port: number, scheme: 'http' | 'https'): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`PORT=${port}: ${host}:${port} is in use; set PORT (and HOST) to a free address for the worker's metrics and health`) : err);
    });
    server.listen(port, host, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      resolve(`${scheme}://${host.includes(':') ? `[${host}]` : host}:${bound}`);
    });
  });
}

/** A PEM file named by `variable`, read once at the start: one that cannot be read stops it there, naming the setting. */
function readPem(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${variable}=${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { BlobStore } from '@meridian/blobstore';
import type { Metadata } from '@meridian/metadata';
import { ReplicaApplier, type LookupCache } from '@meridian/registry';
import type { ReplicaCallerVerifier, ServerCertificate } from '@meridian/proto';
import type { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import type { GatewayConfig } from '../config.js';
import { createReplicaServer, type ReplicaServer } from '../grpc/replica-server.js';
import { OutboxRelay } from './outbox-relay.js';
import { AuditShipper } from './audit-shipper.js';

export interface RegionReplicationDependencies {
  config: GatewayConfig;
  metadata: Metadata;
  blobStore: BlobStore;
  cache: LookupCache;
  /** The region's readiness, as `/readyz` reports it. */
  readiness(): Promise<{ ready: boolean; detail: string }>;
  logger: Logger;
  /** Checks the service token of every replica call; given whenever config.grpc is. */
  callers?: ReplicaCallerVerifier;
  /** Served by the replica server (TLS) when given. */
  certificate?: ServerCertificate;
  /** Told when a purge starts emptying the region (the replica server's Purge). */
  onPurge?(): void;
  /** A peer region's bytes of a blob, for the replica server's FetchBlob (ReplicaServerDependencies.openPeerBlob). */
  openPeerBlob?(region: string, digest: string, offset: number): Promise<Readable>;
  /** The control plane's admin API, as this region calls it (with its service token); given whenever config.controlPlaneUrl is. */
  controlPlane?: ControlPlaneHttp;
}

export interface RegionReplication {
  /** The replica server's port, once listening (undefined when the region serves none). */
  grpcPort?: number;
  start(): Promise<void>;
  close(graceMs: number): Promise<void>;
}

/**
 * The parts that make a gateway a region of a cluster, each on only when configured: the
 * replica protocol server (MERIDIAN_GRPC_PORT), the outbox relay and, in the relay's process,
 * the audit shipper (MERIDIAN_CONTROL_PLANE).
 * A region without them is the standalone registry `pnpm start` runs: its writes wait in the
 * outbox, so a region joined to a cluster later relays what it took meanwhile.
 */
export function createRegionReplication(deps: RegionReplicationDependencies): RegionReplication {
  const { config, logger } = deps;
  let server: ReplicaServer | undefined;
  let relay: OutboxRelay | undefined;
  let auditShipper: AuditShipper | undefined;
  const replication: RegionReplication = {
    async start() {
      if (config.grpc) {
        if (!deps.callers) throw new Error('a replica server needs a verifier of service tokens');
        server = createReplicaServer({
          callers: deps.callers,
          ...(deps.certificate ? { certificate: deps.certificate } : {}),
          region: config.region,
          replica: new ReplicaApplier(deps.metadata, deps.blobStore, deps.cache, logger),
          readiness: deps.readiness,
          logger,
          ...(deps.onPurge ? { onPurge: deps.onPurge } : {}),
          ...(deps.openPeerBlob ? { openPeerBlob: deps.openPeerBlob } : {}),
        });
        replication.grpcPort = await server.listen(config.grpc.host, config.grpc.port);
      }
      if (deps.controlPlane) {
        relay = new OutboxRelay({
          region: config.region,
          controlPlane: deps.controlPlane,
          databaseUrl: config.databaseUrl,
          metadata: deps.metadata,
          logger,
        });
        relay.start();
        const leader = relay;
        auditShipper = new AuditShipper({
          region: config.region,
          controlPlane: deps.controlPlane,
          metadata: deps.metadata,
          isLeading: () => leader.isLeading,
          logger,
        });
        auditShipper.start();
      }
    },
    async close(graceMs) {
      await Promise.all([server?.close(graceMs), relay?.stop(), auditShipper?.stop()]);
    },
  };
  return replication;
}

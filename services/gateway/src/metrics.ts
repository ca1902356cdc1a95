import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Response } from 'express';
import type { Metadata } from '@meridian/metadata';
import { Metrics, observeDatabasePool, pathOf, type Counter, type PoolCounts } from '@meridian/telemetry';
import { IDENTITY_API_PATHS } from '@meridian/auth/http';
import { AUDIT_PATH } from './http/handlers/audit.js';
import { TOKEN_PATH } from './http/handlers/token.js';

/** What the OCI router counts beyond the HTTP metrics every service has. */
export interface GatewayMetrics {
  metrics: Metrics;
  /** Blob bytes taken in by uploads (chunks, monolithic and closing PUTs), as they arrive. */
  blobBytesReceived: Counter;
  /** Blob bytes of pulls answered in full (GET, ranged ones included). */
  blobBytesServed: Counter;
  /** Blobs filled from a peer region (read-through), by how the fill ended. */
  readThroughFills: Counter<'result'>;
  blobCacheHits: Counter;
  blobCacheMisses: Counter;
  blobCacheEvictions: Counter;
}

/** Paths outside the OCI route table that the gateway answers, by the route name they are counted under. */
const OTHER_ROUTES: Record<string, string> = { '/healthz': 'healthz', '/readyz': 'readyz', '/metrics': 'metrics', [TOKEN_PATH]: 'token', [AUDIT_PATH]: 'audit' };

/** Whether a path is the identity admin API's (a collection, or an item under one), counted as `identity`. */
function isIdentityApiPath(path: string): boolean {
  return IDENTITY_API_PATHS.some((collection) => path === collection || path.startsWith(`${collection}/`));
}

/**
 * The gateway's metrics (README, "Observability"): the HTTP ones, blob bytes in and out, the
 * database pool, and, read at each scrape, the bytes the region stores (from its metadata) and
 * the upload sessions holding bytes (from its store). The last two are the same for every
 * gateway process of the region, so a supervisor summing its workers takes the largest rather
 * than the sum.
 */
export function createGatewayMetrics(deps: {
  region: string;
  pool: PoolCounts;
  metadata: Metadata;
  /** The sessions holding bytes in the region's store: an open session has no other record. */
  uploadsHoldingBytes(): Promise<number>;
  onScrapeError(err: unknown): void;
}): GatewayMetrics {
  const metrics = new Metrics({ service: 'gateway', region: deps.region });
  observeDatabasePool(metrics, deps.pool);
  metrics.gauge({
    name: 'meridian_storage_used_bytes',
    help: 'Bytes of the blobs the region holds, each blob once.',
    aggregator: 'max',
    async collect() {
      await deps.metadata.blobs.storedBytes().then((bytes) => this.set(bytes), deps.onScrapeError);
    },
  });
  metrics.gauge({
    name: 'meridian_uploads_in_progress',
    help: 'Blob upload sessions of the region holding bytes (a chunk received; not yet closed, cancelled or purged).',
    aggregator: 'max',
    async collect() {
      await deps.uploadsHoldingBytes().then((count) => this.set(count), deps.onScrapeError);
    },
  });
  return {
    metrics,
    blobBytesReceived: metrics.counter({ name: 'meridian_blob_bytes_received_total', help: 'Blob bytes received by uploads.' }),
    blobBytesServed: metrics.counter({ name: 'meridian_blob_bytes_served_total', help: 'Blob bytes of pulls answered in full.' }),
    readThroughFills: metrics.counter({
      name: 'meridian_readthrough_fills_total',
      help: 'Blobs the region lacked, filled from a peer region while served (read-through), by result (ok, failed).',
      labelNames: ['result'],
    }),
    blobCacheHits: metrics.counter({
      name: 'meridian_blob_cache_hits_total',
      help: 'Blob pulls served from the region\'s own store, in a cluster (where a miss is filled from a peer).',
    }),
    blobCacheMisses: metrics.counter({ name: 'meridian_blob_cache_misses_total', help: 'Blob pulls the region served through a read-through fill from a peer.' }),
    blobCacheEvictions: metrics.counter({ name: 'meridian_blob_cache_evictions_total', help: 'Blobs an edge region evicted to stay within its cache size.' }),
  };
}

/** The route name a gateway response is counted under: the OCI route table's, one of OTHER_ROUTES, or `identity`. */
export function gatewayRouteOf(req: IncomingMessage, res: ServerResponse): string {
  const route = (res as Response).locals?.route as string | undefined;
  if (route !== undefined) return route;
  const path = pathOf(req);
  return OTHER_ROUTES[path] ?? (isIdentityApiPath(path) ? 'identity' : 'unmatched');
}

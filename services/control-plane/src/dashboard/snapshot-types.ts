/**
 * What `/api/v1/dashboard` answers and `/api/v1/dashboard/events` streams: the whole dashboard
 * at one moment. The browser code (../../dashboard-ui) imports these types too, so this file
 * imports nothing.
 */

/**
 * How a region looks from the control plane:
 * - `healthy`: its gateway answered `/readyz` at the last probe and its relay's heartbeat is fresh;
 * - `stale`: its gateway is ready but no heartbeat came lately (the relay cannot reach the control
 *   plane, so its pushes are not relayed);
 * - `down`: its gateway did not answer `/readyz` with 200 at the last probe;
 * - `unknown`: not probed yet (the control plane has just started, or the region was just added).
 */
export type RegionHealth = 'healthy' | 'stale' | 'down' | 'unknown';

/** One figure of a region card: its value now and a sparkline of the last hour. */
export interface Figure {
  /** The latest value; null when there is no data for it now. */
  current: number | null;
  /** One point per step (`DashboardSnapshot.stepSeconds`), oldest first; null where there was no data. */
  series: Array<number | null>;
  /**
   * False when the region's gateway does not expose what the figure is computed from (an older
   * gateway, or one whose metrics cannot be read): the page says "no data" rather than 0.
   */
  available: boolean;
}

export type FigureName =
  | 'requestsPerSecond'
  | 'pullP99Seconds'
  | 'errorRatio'
  | 'replicationBacklog'
  | 'replicationLagP99Seconds'
  | 'cacheHitRatio'
  | 'storageUsedBytes';

export interface RegionCard {
  name: string;
  /** adding, active or draining (GET /api/v1/regions). */
  state: string;
  http: string;
  health: RegionHealth;
  /** Why the region is not healthy, in a few words (the probe's error, the heartbeat's age). */
  healthReason: string | null;
  /** Why the gateway's metrics could not be read at the last scrape (its figures then show "no data"). */
  metricsError: string | null;
  /** Seconds since the relay's last heartbeat; null when none came yet. */
  heartbeatAgeSeconds: number | null;
  figures: Record<FigureName, Figure>;
}

/** Replications of the changes made in `source` to `target` (a cell of the matrix). */
export interface MatrixCell {
  source: string;
  target: string;
  pending: number;
  failed: number;
  /** 99th percentile of commit-at-source to applied-at-target over the last hour; null if none applied. */
  lagP99Seconds: number | null;
}

export type PushState = 'present' | 'pending' | 'failed' | 'superseded' | 'dropped' | 'absent';

/** One of the newest manifest pushes and where it stands in every region. */
export interface PushStatus {
  changeId: string;
  repository: string;
  tag: string | null;
  digest: string;
  origin: string;
  /** When the origin committed it (ISO 8601). */
  at: string;
  regions: Array<{ name: string; state: PushState; attempts: number; error: string | null }>;
}

export interface DashboardSnapshot {
  /** When this snapshot was made (ISO 8601). */
  generatedAt: string;
  /** How often each region is probed and scraped. */
  scrapeIntervalSeconds: number;
  /** The span of each sparkline, and the width of one of its points. */
  windowSeconds: number;
  stepSeconds: number;
  regions: RegionCard[];
  /** Source region × target region; sources and targets listed in order, cells only where rows exist. */
  matrix: { regions: string[]; cells: MatrixCell[] };
  pushes: PushStatus[];
}

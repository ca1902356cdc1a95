import type { Logger } from 'pino';
import type { RegionRecord } from '@meridian/proto';
import type { RegionStore } from '../store/regions.js';
import type { ReplicationFiguresStore } from '../store/replication-figures.js';
import type { ReplicationRow, ReplicationStore } from '../store/replications.js';
import { regionFigures, type RegionSample } from './figures.js';
import type { RegionMetricsCollector } from './region-metrics-collector.js';
import type { DashboardSnapshot, PushState, PushStatus, RegionCard, RegionHealth } from './snapshot-types.js';

export interface DashboardDeps {
  regions: RegionStore;
  replications: ReplicationStore;
  figures: ReplicationFiguresStore;
  collector: RegionMetricsCollector;
  logger: Logger;
  /** The span of the sparklines (an hour) and of one of their points. */
  windowMs: number;
  stepMs: number;
  /** How many of the newest manifest pushes the page follows. */
  pushes: number;
}

/**
 * A relay beats every 5 s (services/gateway OutboxRelay); three missed beats make a region
 * `stale`. Its gateway may still serve, but its pushes wait in its outbox.
 */
const HEARTBEAT_STALE_SECONDS = 15;

/** A view of the matrix and the lag over the same span as the sparklines. */
const MATRIX_LAG_WINDOW_SECONDS = 3600;

export interface DashboardSubscriber {
  send(snapshot: DashboardSnapshot): void;
  end(): void;
}

/**
 * The per-region health dashboard's figures: region cards from the collector's samples and the
 * region list, the replication matrix and the newest pushes from the database. Subscribers get a
 * snapshot after every collection round, one snapshot made per round however many are watching.
 */
export class Dashboard {
  private readonly subscribers = new Set<DashboardSubscriber>();
  private unsubscribeRound?: () => void;
  private sending?: Promise<void>;

  constructor(private readonly deps: DashboardDeps) {}

  async snapshot(now = Date.now()): Promise<DashboardSnapshot> {
    const { regions: regionStore, figures, collector, windowMs, stepMs } = this.deps;
    const regions = await regionStore.list(new Date(now));
    const [matrix, pushes] = await Promise.all([figures.matrix(MATRIX_LAG_WINDOW_SECONDS), this.newestPushes(regions)]);
    const window = { now, stepMs, points: Math.round(windowMs / stepMs) };
    return {
      generatedAt: new Date(now).toISOString(),
      scrapeIntervalSeconds: collector.intervalMs / 1000,
      windowSeconds: windowMs / 1000,
      stepSeconds: stepMs / 1000,
      regions: regions.map((region): RegionCard => {
        const samples = collector.samplesOf(region.name);
        const latest = samples[samples.length - 1];
        const heartbeatAgeSeconds = region.heartbeatAt === null ? null : Math.max(0, (now - Date.parse(region.heartbeatAt)) / 1000);
        return {
          name: region.name,
          state: region.state,
          http: region.http,
          ...regionHealth(latest, heartbeatAgeSeconds, now, collector.intervalMs),
          metricsError: latest?.metricsError ?? null,
          heartbeatAgeSeconds,
          figures: regionFigures(samples, window),
        };
      }),
      matrix: { regions: regions.map((region) => region.name), cells: matrix },
      pushes,
    };
  }

  /** Sends `subscriber` a snapshot now and after every round, until it unsubscribes (the function returned). */
  subscribe(subscriber: DashboardSubscriber): () => void {
    this.subscribers.add(subscriber);
    this.unsubscribeRound ??= this.deps.collector.onRound(() => void this.broadcast());
    void this.snapshot().then(
      (snapshot) => this.subscribers.has(subscriber) && subscriber.send(snapshot),
      (err: Error) => this.deps.logger.warn({ reason: err.message }, 'dashboard snapshot failed'),
    );
    return () => {
      this.subscribers.delete(subscriber);
      if (this.subscribers.size === 0) {
        this.unsubscribeRound?.();
        this.unsubscribeRound = undefined;
      }
    };
  }

  /** Ends every subscription (the control plane is closing: open streams would hold its server). */
  close(): void {
    for (const subscriber of this.subscribers) subscriber.end();
    this.subscribers.clear();
    this.unsubscribeRound?.();
    this.unsubscribeRound = undefined;
  }

  private async broadcast(): Promise<void> {
    // A round that ends while the last snapshot is still being made is covered by the next one.
    if (this.sending) return;
    this.sending = this.snapshot()
      .then((snapshot) => {
        for (const subscriber of this.subscribers) subscriber.send(snapshot);
      })
      .catch((err: Error) => this.deps.logger.warn({ reason: err.message }, 'dashboard snapshot failed'))
      .finally(() => (this.sending = undefined));
  }

  /** The newest pushes, each with where it stands in every region taking work and its origin. */
  private async newestPushes(regions: RegionRecord[]): Promise<PushStatus[]> {
    const pushes = await this.deps.figures.newestPushes(this.deps.pushes);
    const rows = await this.deps.replications.forChanges(pushes.map((push) => push.changeId));
    const taking = regions.filter((region) => region.state !== 'draining').map((region) => region.name);
    return pushes.map((push) => ({
      ...push,
      regions: [...new Set([...taking, push.origin])]
        .sort()
        .map((name) => pushState(name, push.origin, rows.find((row) => row.changeId === push.changeId && row.region === name))),
    }));
  }
}

/** Where one push stands in one region: present where it was made or applied, else as its row says. */
function pushState(name: string, origin: string, row: ReplicationRow | undefined): PushStatus['regions'][number] {
  if (name === origin) return { name, state: 'present', attempts: 0, error: null };
  if (!row) return { name, state: 'absent', attempts: 0, error: null };
  const state: PushState = row.state === 'done' ? 'present' : row.state;
  return { name, state, attempts: row.attempts, error: row.state === 'failed' ? (row.lastError ?? 'unknown error') : null };
}

/**
 * A region is down when its gateway did not answer `/readyz` with 200 at the last probe, stale
 * when it did but its relay's heartbeat is old or missing, and unknown until it has been probed
 * (or when the collector has not probed it for three intervals).
 */
export function regionHealth(
  latest: RegionSample | undefined,
  heartbeatAgeSeconds: number | null,
  now: number,
  intervalMs: number,
): { health: RegionHealth; healthReason: string | null } {
  if (!latest || now - latest.at > 3 * intervalMs) return { health: 'unknown', healthReason: 'not probed yet' };
  if (latest.probe !== 'ready') return { health: 'down', healthReason: `gateway ${latest.probe === 'unready' ? 'not ready' : 'unreachable'}: ${latest.probeError}` };
  if (heartbeatAgeSeconds === null) return { health: 'stale', healthReason: 'no heartbeat from its relay yet' };
  if (heartbeatAgeSeconds > HEARTBEAT_STALE_SECONDS) return { health: 'stale', healthReason: `no heartbeat for ${Math.round(heartbeatAgeSeconds)} s` };
  return { health: 'healthy', healthReason: null };
}

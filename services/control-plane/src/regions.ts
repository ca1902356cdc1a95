import { setTimeout } from 'node:timers/promises';
import type pg from 'pg';
import type { Logger } from 'pino';
import { noPurgeCounts, type PurgeCounts, type PurgeStep, type RegionRecord } from '@meridian/proto';
import { ContentUnreplicatedError, PurgeRunningError, RegionBusyError, RegionExistsError, RegionRefusedError, RegionUnknownError, RegionUnreachableError } from './errors.js';
import type { ReplicationQueue } from './queue/replication-queue.js';
import type { Requeue } from './queue/requeue.js';
import { addCounts, isUnreachable, type OpenRegionPurge } from './region-purge.js';
import type { CatalogStore } from './store/catalog.js';
import { inTransaction, lockCatalog } from './store/db.js';
import type { NewRegion, RegionStore } from './store/regions.js';
import type { ReplicationStore } from './store/replications.js';

export interface RegionDeps {
  pool: pg.Pool;
  regions: RegionStore;
  catalog: CatalogStore;
  replications: ReplicationStore;
  queue: ReplicationQueue;
  requeue: Requeue;
  logger: Logger;
  /** How purges reach a region (purgeOverGrpc, or a test's). */
  openPurge: OpenRegionPurge;
  /** How long a purge waits for replication jobs still running against the region (default a minute). */
  runningJobsWaitMs?: number;
}

/** What `DELETE /api/v1/regions/NAME?purge=true` answers. */
export interface PurgeReport {
  region: string;
  /** What the region deleted: its repositories, manifests, tags, blob links, blobs and their bytes. */
  deleted: PurgeCounts;
  /** The region's replication records removed from the control plane with it. */
  replicationsRemoved: number;
}

/** How many of the items only a region holds a refused purge names. */
const UNREPLICATED_SAMPLE = 20;
const RUNNING_JOBS_WAIT_MS = 60_000;

/** Registering, removing and listing regions: what `meridian region ...` drives. */
export class RegionService {
  /** Regions being purged by this process: neither purged again nor registered meanwhile. */
  private readonly purging = new Set<string>();

  constructor(private readonly deps: RegionDeps) {}

  list(): Promise<RegionRecord[]> {
    return this.deps.regions.list();
  }

  /**
   * Registers a region (or brings back one being removed). It takes new changes at once; what
   * the catalog already holds comes as a backfill, one replication per live manifest, tag and
   * blob link. With nothing to backfill the region is active at once, else `adding` until no
   * backfill item is pending. Throws RegionExistsError for a registered region not draining.
   */
  async add(region: NewRegion): Promise<RegionRecord> {
    const { pool, regions, catalog, replications, requeue, logger } = this.deps;
    if (this.purging.has(region.name)) throw new PurgeRunningError(region.name);
    const backfill = await inTransaction(pool, async (tx) => {
      await lockCatalog(tx, 'exclusive');
      const state = await regions.lockState(region.name, tx);
      if (state !== undefined && state !== 'draining') throw new RegionExistsError(region.name, state);
      const changeIds = await catalog.liveChangeIds(region.name, tx);
      await regions.upsert(region, changeIds.length > 0 ? 'adding' : 'active', tx);
      return replications.createBackfill(region.name, changeIds, tx);
    });
    logger.info({ region: region.name, backfill }, 'region registered');
    // A backfill adds many rows at once; until autovacuum gets to them, the planner's stale
    // figures turn each page of the requeue into a sort of every pending row (measured: 43 ms a
    // page of 500 at 40,000 pending rows, 0.5 ms once analysed).
    if (backfill > 1000) await pool.query('ANALYZE replications');
    await requeue.run(region.name);
    return (await regions.get(region.name))!;
  }

  /**
   * Starts removing a region: it turns `draining`, no new work targets it, its pending
   * replications are dropped and their queued jobs removed. Its data stays where it is (see
   * purge).
   */
  async remove(name: string): Promise<RegionRecord> {
    const { pool, regions, replications, queue, logger } = this.deps;
    const dropped = await inTransaction(pool, async (tx) => {
      await lockCatalog(tx, 'exclusive');
      if ((await regions.lockState(name, tx)) === undefined) throw new RegionUnknownError(name);
      await regions.setState(name, 'draining', tx);
      return replications.dropPending(name, tx);
    });
    await queue.remove(dropped);
    logger.info({ region: name, dropped: dropped.length }, 'region draining');
    return (await regions.get(name))!;
  }

  /**
   * Removes a region for good: drains it (if it is not draining yet), has it delete everything it
   * holds (replica.proto `Purge`, a page at a time), then deletes the region and its replication
   * records here. Refuses, deleting nothing, when the region holds content no other region taking
   * work holds, by the control plane's records, or changes it never relayed
   * (ContentUnreplicatedError), unless `force`. A region that cannot be reached
   * (RegionUnreachableError) or refuses (RegionRefusedError) stays draining, with whatever it
   * deleted so far gone; a purge run again finishes the work. One purge per region at a time.
   */
  async purge(name: string, options: { force: boolean }): Promise<PurgeReport> {
    if (this.purging.has(name)) throw new PurgeRunningError(name);
    this.purging.add(name);
    try {
      return await this.purgeRegion(name, options.force);
    } finally {
      this.purging.delete(name);
    }
  }

  private async purgeRegion(name: string, force: boolean): Promise<PurgeReport> {
    const { pool, regions, catalog, replications, logger } = this.deps;
    const found = await regions.get(name);
    if (!found) throw new RegionUnknownError(name);
    const region = found.state === 'draining' ? found : await this.remove(name);
    await this.waitForRunningJobs(name);
    const session = this.deps.openPurge(region);
    let deleted = noPurgeCounts();
    try {
      const call = (request: { dryRun: boolean; discardUnrelayed: boolean }): Promise<PurgeStep> =>
        session.step(request).catch((err: unknown) => {
          const reason = err instanceof Error ? err.message : String(err);
          throw isUnreachable(err) ? new RegionUnreachableError(name, region.grpc, reason) : new RegionRefusedError(name, reason);
        });
      const held = await call({ dryRun: true, discardUnrelayed: false });
      const only = await catalog.heldOnlyBy(name, UNREPLICATED_SAMPLE);
      if ((only.total > 0 || held.unrelayed > 0) && !force) throw new ContentUnreplicatedError(name, { ...only, unrelayed: held.unrelayed });
      logger.warn({ region: name, holds: held.counts, unreplicated: only.total, unrelayed: held.unrelayed }, 'purging region: deleting everything it holds');
      for (;;) {
        const step = await call({ dryRun: false, discardUnrelayed: force });
        deleted = addCounts(deleted, step.counts);
        if (step.done) break;
        // Every step deletes something while anything is left; one that does not would loop.
        if (Object.values(step.counts).every((count) => count === 0)) throw new RegionRefusedError(name, 'a purge step deleted nothing, yet the region still holds content');
      }
    } finally {
      session.close();
    }
    const replicationsRemoved = await inTransaction(pool, async (tx) => {
      await lockCatalog(tx, 'exclusive');
      if ((await regions.lockState(name, tx)) === undefined) throw new RegionUnknownError(name);
      const removed = await replications.deleteForRegion(name, tx);
      await regions.delete(name, tx);
      return removed;
    });
    logger.warn({ region: name, deleted, replicationsRemoved }, 'region purged and removed');
    return { region: name, deleted, replicationsRemoved };
  }

  /**
   * Draining stops new jobs for a region, not those a worker had already taken: they go on
   * writing to it, and would leave content behind a purge. Waits for them to end, up to
   * `runningJobsWaitMs`, then refuses (RegionBusyError). When Redis cannot tell, the purge goes
   * on (logged) rather than wait for Redis as long as it is away.
   */
  private async waitForRunningJobs(name: string): Promise<void> {
    const deadline = Date.now() + (this.deps.runningJobsWaitMs ?? RUNNING_JOBS_WAIT_MS);
    for (;;) {
      const running = await this.deps.queue.runningFor(name);
      if (running === 0) return;
      if (running === undefined) {
        this.deps.logger.warn({ region: name }, 'purge: Redis cannot tell whether replication jobs still run against the region; going on');
        return;
      }
      if (Date.now() >= deadline) throw new RegionBusyError(name, running);
      await setTimeout(250);
    }
  }

  /**
   * Turns nearest-region routing to a region on or off (the router reads it with the region
   * list); replication is untouched. Throws RegionUnknownError for a region never registered.
   */
  async setRouting(name: string, routing: boolean): Promise<RegionRecord> {
    if (!(await this.deps.regions.setRouting(name, routing))) throw new RegionUnknownError(name);
    this.deps.logger.info({ region: name, routing }, `routing to region ${routing ? 'on' : 'off'}`);
    return (await this.deps.regions.get(name))!;
  }

  async heartbeat(name: string): Promise<void> {
    if (!(await this.deps.regions.heartbeat(name))) throw new RegionUnknownError(name);
  }
}

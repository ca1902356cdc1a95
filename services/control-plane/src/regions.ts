import type pg from 'pg';
import type { Logger } from 'pino';
import type { RegionRecord } from '@meridian/proto';
import { NotSupportedError, RegionExistsError, RegionUnknownError } from './errors.js';
import type { ReplicationQueue } from './queue/replication-queue.js';
import type { Requeue } from './queue/requeue.js';
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
}

/** Registering, removing and listing regions: what `meridian region ...` drives. */
export class RegionService {
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
   * replications are dropped and their queued jobs removed. Its data stays where it is (purging
   * it is not supported yet: NotSupportedError, and nothing changes).
   */
  async remove(name: string, options: { purge: boolean }): Promise<RegionRecord> {
    const { pool, regions, replications, queue, logger } = this.deps;
    if (options.purge) {
      throw new NotSupportedError(
        `purging a region's data is not supported yet: remove region "${name}" without purge, then drop its database and data directory by hand`,
      );
    }
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

  async heartbeat(name: string): Promise<void> {
    if (!(await this.deps.regions.heartbeat(name))) throw new RegionUnknownError(name);
  }
}

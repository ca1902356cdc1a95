import type pg from 'pg';
import type { Logger } from 'pino';
import { inSpanOf } from '@meridian/telemetry';
import type { ChangeBatch, ReferenceStatus, RegionReplicationStatus, ReplicatedChange, ReplicationOutcome } from '@meridian/proto';
import { ChangeUnknownError, InvalidRequestError, ReferenceUnknownError, ReplicationUnknownError } from './errors.js';
import type { ReplicationQueue } from './queue/replication-queue.js';
import type { CatalogStore } from './store/catalog.js';
import type { ChangeStore, StoredChange } from './store/changes.js';
import { inTransaction, lockCatalog } from './store/db.js';
import type { RegionStore } from './store/regions.js';
import type { ReplicationKey, ReplicationRow, ReplicationStore } from './store/replications.js';

export interface ReplicationDeps {
  pool: pg.Pool;
  changes: ChangeStore;
  catalog: CatalogStore;
  regions: RegionStore;
  replications: ReplicationStore;
  queue: ReplicationQueue;
  logger: Logger;
}

/**
 * Changes in, jobs out: stores what the regions relay, merges it into the catalog, plans one
 * replication per target region, records what the worker reports, and answers where a manifest
 * stands.
 */
export class ReplicationService {
  constructor(private readonly deps: ReplicationDeps) {}

  /**
   * Stores a batch of one origin's changes, in seq order, each once: a batch delivered again (the
   * relay did not see the answer) stores nothing new and queues nothing new. For each new change,
   * in the same transaction: the catalog merge and one pending replication per target region.
   * Then the jobs are queued; if Redis is away they wait for the requeue: the changes are stored,
   * and that is what the relay needs to hear. Returns the last seq stored.
   */
  async ingest(batch: ChangeBatch): Promise<{ acknowledged: string; stored: number }> {
    const { pool, changes, catalog, replications, queue } = this.deps;
    const strayIndex = batch.changes.findIndex((change) => change.origin !== batch.origin);
    if (strayIndex >= 0) {
      throw new InvalidRequestError(`changes.${strayIndex}.origin: "${batch.changes[strayIndex]!.origin}" is not the batch's origin "${batch.origin}"`);
    }
    const ordered = [...batch.changes].sort((a, b) => compareDecimal(a.seq, b.seq));
    const { stored, planned } = await inTransaction(pool, async (tx) => {
      await lockCatalog(tx, 'shared');
      const stored = new Map<string, ReplicatedChange>();
      for (const change of ordered) {
        const id = await changes.insert(change, tx);
        if (id === undefined) continue;
        await catalog.apply(id, change, tx);
        stored.set(id, change);
      }
      const planned = await replications.createForChanges([...stored.keys()], tx);
      return { stored, planned };
    });
    await traceIngested(stored, planned);
    await queue.enqueue(planned.map((key) => ({ ...key, change: stored.get(key.changeId)! })));
    const acknowledged = ordered.length > 0 ? ordered[ordered.length - 1]!.seq : await changes.lastSeq(batch.origin);
    return { acknowledged, stored: stored.size };
  }

  async getChange(id: string): Promise<StoredChange> {
    const change = /^[1-9]\d{0,18}$/.test(id) ? await this.deps.changes.get(id) : undefined;
    if (!change) throw new ChangeUnknownError(id);
    return change;
  }

  /**
   * Records the worker's outcome for (change, region). A backfill row that finishes may be the
   * region's last one pending: the region then turns active. An outcome for a region purged
   * meanwhile (a job that was running while it went) has nowhere to go and is taken as recorded,
   * so the worker does not keep trying to report it.
   */
  async report(key: ReplicationKey, outcome: ReplicationOutcome): Promise<void> {
    const row = await this.deps.replications.report(key, outcome);
    if (!row && !(await this.deps.regions.get(key.region))) return;
    if (!row) throw new ReplicationUnknownError(key.changeId, key.region);
    if (row.backfill && (await this.deps.regions.activateIfCaughtUp(key.region))) {
      this.deps.logger.info({ region: key.region }, 'region backfilled: now active');
    }
  }

  /**
   * Where a tag or a manifest (by digest) of a repository stands in each region; with no
   * reference, each tag of the repository.
   */
  async status(repository: string, reference?: string): Promise<ReferenceStatus[]> {
    const { catalog } = this.deps;
    if (reference === undefined) {
      const tags = await catalog.tags(repository);
      return Promise.all(tags.map((tag) => this.tagStatus(repository, tag.tag, tag.digest, tag.changeId)));
    }
    if (reference.includes(':')) {
      const manifest = await catalog.manifest(repository, reference);
      if (!manifest) throw new ReferenceUnknownError(repository, reference);
      const puts = await this.deps.changes.currentPuts(repository, reference);
      return [{ tag: null, digest: reference, regions: await this.regionStates(puts) }];
    }
    const tag = await catalog.tag(repository, reference);
    if (!tag) throw new ReferenceUnknownError(repository, reference);
    return [await this.tagStatus(repository, tag.tag, tag.digest, tag.changeId)];
  }

  /** A tag is where the write that set it has been applied. */
  private async tagStatus(repository: string, tag: string, digest: string, changeId: string): Promise<ReferenceStatus> {
    const change = await this.deps.changes.get(changeId);
    return { tag, digest, regions: await this.regionStates(change ? [change] : []) };
  }

  /**
   * Each region's state given the changes that wrote the content: present where one of them was
   * made or has been applied, else pending or failed as its rows are, else absent. Regions being
   * removed are left out.
   */
  private async regionStates(writes: StoredChange[]): Promise<RegionReplicationStatus[]> {
    const [regions, rows] = await Promise.all([this.deps.regions.list(), this.deps.replications.forChanges(writes.map((write) => write.id))]);
    const names = new Set(regions.filter((region) => region.state !== 'draining').map((region) => region.name));
    for (const write of writes) names.add(write.change.origin);
    return [...names].sort().map((name) => {
      const origin = writes.find((write) => write.change.origin === name);
      if (origin) return { name, state: 'present', updatedAt: origin.change.at };
      return stateFromRows(name, rows.filter((row) => row.region === name));
    });
  }
}

function stateFromRows(name: string, rows: ReplicationRow[]): RegionReplicationStatus {
  const done = rows.find((row) => row.state === 'done');
  if (done) return { name, state: 'present', updatedAt: done.updatedAt };
  const pending = rows.find((row) => row.state === 'pending');
  if (pending) return { name, state: 'pending', attempts: pending.attempts, updatedAt: pending.updatedAt };
  const failed = rows.find((row) => row.state === 'failed');
  if (failed) return { name, state: 'failed', error: failed.lastError ?? 'unknown error', attempts: failed.attempts, updatedAt: failed.updatedAt };
  return { name, state: 'absent', updatedAt: null };
}

/** Orders two non-negative decimal strings (seq values exceed what a JS number holds exactly). */
function compareDecimal(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x === y ? 0 : x > y ? 1 : -1;
}

/**
 * A span in the trace of each stored change that carries one (the push that made it), saying the
 * control plane took it and which regions it is replicated to; the jobs' spans at the worker
 * join the same trace from the job's data.
 */
async function traceIngested(stored: Map<string, ReplicatedChange>, planned: ReplicationKey[]): Promise<void> {
  for (const [id, change] of stored) {
    if (!change.trace) continue;
    const targets = planned.filter((key) => key.changeId === id).map((key) => key.region);
    await inSpanOf(change.trace, 'replication.plan', { attributes: { 'meridian.change_id': id, 'meridian.change_kind': change.body.kind, 'meridian.target_regions': targets } }, async () => undefined);
  }
}

import type { Logger } from 'pino';
import type { ListInventoryReply, RegionRecord, ReplicaDialer } from '@meridian/proto';
import { RegionUnknownError } from '../errors.js';
import type { Requeue } from '../queue/requeue.js';
import type { RegionStore } from '../store/regions.js';
import type { CatalogEntry, CatalogSnapshot, ReconcileStore } from './store.js';

/** What a region reports holding, as ListInventory pages carry it. */
export interface RegionInventory {
  manifests: Array<{ repository: string; digest: string }>;
  tags: Array<{ repository: string; tag: string; digest: string; hlc: bigint; origin: string }>;
  blobs: Array<{ repository: string; digest: string; state: string }>;
  /** The region's own changes not yet stored by the control plane, counted after the inventory was read. */
  unrelayed: number;
}

export interface ReconcileSummary {
  region: string;
  /** Live catalog manifests, tags and blob links the region lacks. */
  missing: number;
  /** Items the region holds that the catalog has deleted: their deletes are applied there again, unless `unrelayed` > 0. */
  extra: number;
  /** Blob links the region reports pending: bytes it should hold but lacks, or holds corrupt. */
  pendingBlobs: number;
  /** Replications made pending again to repair the region (the writes it lacks, the deletes it missed). */
  repaired: number;
  /**
   * The region's changes still in its outbox. While there are any, the catalog may not know
   * what the region wrote last, so nothing it holds is deleted on the catalog's word.
   */
  unrelayed: number;
}

/** Reads one region's whole inventory (the page source: gRPC, or a test's). */
export type InventoryReader = (region: RegionRecord, options: { verify: boolean }) => Promise<RegionInventory>;

export interface ReconcilerOptions {
  regions: RegionStore;
  store: ReconcileStore;
  requeue: Requeue;
  logger: Logger;
  /** 0: no periodic pass (POST /api/v1/reconcile still runs one). */
  intervalMs: number;
  /**
   * How often a periodic pass also verifies blob bytes (each region re-hashes every blob it
   * holds: a read of the whole store, hence rarer than the pass itself); 0: never.
   */
  verifyIntervalMs?: number;
  /** Changes younger than this are left alone: they may still be on their way. */
  settleMs?: number;
  /** How inventories are read (inventoryOverGrpc, or a test's). */
  readInventory: InventoryReader;
}

const DEFAULT_SETTLE_MS = 10_000;

/**
 * Periodic reconciliation: each region's inventory against the global catalog. Whatever live
 * item a region lacks, and every blob it reports pending (lost, or found corrupt when asked to
 * verify), is repaired by making the replication of the change that wrote it pending again; the
 * worker then copies it as it would any change. An item a region holds that the catalog has
 * deleted is repaired the same way, with the delete: the worker applies it with the tombstone's
 * clock (ApplyDelete), so a newer write the region holds stays. Deletes are judged only on
 * tombstones, never on what the catalog merely lacks, and only when the region's outbox is empty:
 * the catalog then knows every write the region's inventory shows. Replication normally leaves
 * nothing to repair: this catches what a lost job, a restored backup or a damaged disk left behind.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private lastVerified = Date.now();

  constructor(private readonly options: ReconcilerOptions) {}

  start(): void {
    if (this.options.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      const every = this.options.verifyIntervalMs ?? 0;
      const verify = every > 0 && Date.now() - this.lastVerified >= every;
      if (verify) this.lastVerified = Date.now();
      this.run({ verify }).catch((err) => this.options.logger.warn({ err }, 'reconciliation pass failed'));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass over every region that takes work (or the one named). */
  async run(options: { region?: string; verify: boolean }): Promise<ReconcileSummary[]> {
    const pass = this.pass(options);
    this.running = pass;
    try {
      return await pass;
    } finally {
      if (this.running === pass) this.running = undefined;
    }
  }

  private async pass(options: { region?: string; verify: boolean }): Promise<ReconcileSummary[]> {
    const { regions, store, requeue, logger } = this.options;
    const all = await regions.list();
    if (options.region !== undefined && !all.some((region) => region.name === options.region)) throw new RegionUnknownError(options.region);
    const targets = all.filter((region) => (options.region === undefined || region.name === options.region) && (region.state === 'active' || region.state === 'adding'));
    const readInventory = this.options.readInventory;
    const summaries: ReconcileSummary[] = [];
    for (const region of targets) {
      const inventory = await readInventory(region, { verify: options.verify });
      // The catalog is read after the inventory: an item written between the two reads is young.
      const catalog = await store.snapshot(this.options.settleMs ?? DEFAULT_SETTLE_MS);
      const found = compareInventory(catalog, inventory);
      const settled = inventory.unrelayed === 0;
      const repaired = await store.repair(region.name, settled ? [...new Set([...found.repairs, ...found.deletes])] : found.repairs);
      if (repaired > 0) await requeue.run(region.name);
      const summary: ReconcileSummary = {
        region: region.name,
        missing: found.missing,
        extra: found.extras.length,
        pendingBlobs: found.pendingBlobs,
        repaired,
        unrelayed: inventory.unrelayed,
      };
      if (found.extras.length > 0) {
        const extras = found.extras.slice(0, 20);
        if (settled) logger.info({ region: region.name, extras }, 'reconciliation: the region holds items the catalog deleted; deleting them there');
        else logger.warn({ region: region.name, extras, unrelayed: inventory.unrelayed }, 'reconciliation: the region holds items the catalog deleted; left until its outbox is relayed');
      }
      logger.info(summary, 'reconciliation pass');
      summaries.push(summary);
    }
    return summaries;
  }
}

export interface Comparison {
  missing: number;
  pendingBlobs: number;
  /** The changes to replicate to the region again, each once. */
  repairs: string[];
  /** `kind repository name` of each item held that the catalog deleted. */
  extras: string[];
  /** The deletes (tombstones' changes) to apply in the region again, each once. */
  deletes: string[];
}

/**
 * What differs between a region and the catalog. Young catalog rows are skipped either way; a
 * tag the region holds with a newer clock than the catalog's is its own write on the way. A tag
 * the catalog deleted with its manifest is deleted again only if the region's tag names that
 * manifest: the manifest's delete takes only the tags naming it.
 */
export function compareInventory(catalog: CatalogSnapshot, inventory: RegionInventory): Comparison {
  const repairs = new Set<string>();
  const extras: string[] = [];
  const deletes = new Set<string>();
  let missing = 0;
  let pendingBlobs = 0;
  const index = (entries: CatalogEntry[]) => new Map(entries.map((entry) => [key(entry.repository, entry.name), entry]));

  const manifests = index(catalog.manifests);
  const heldManifests = new Set(inventory.manifests.map((m) => key(m.repository, m.digest)));
  for (const [name, entry] of manifests) {
    if (entry.deleted || entry.young || heldManifests.has(name)) continue;
    missing += 1;
    repairs.add(entry.changeId);
  }
  for (const name of heldManifests) {
    const entry = manifests.get(name);
    if (!entry?.deleted || entry.young) continue;
    extras.push(`manifest ${name}`);
    deletes.add(entry.changeId);
  }

  const tags = index(catalog.tags);
  const heldTags = new Map(inventory.tags.map((t) => [key(t.repository, t.tag), t]));
  for (const [name, entry] of tags) {
    if (entry.young) continue;
    const held = heldTags.get(name);
    const heldNewer = held !== undefined && (held.hlc > entry.hlc || (held.hlc === entry.hlc && held.origin > entry.origin));
    if (entry.deleted) {
      if (!held || heldNewer) continue;
      extras.push(`tag ${name}`);
      if (entry.changeKind === 'tag.delete' || held.digest === entry.digest) deletes.add(entry.changeId);
    } else if (!heldNewer && held?.digest !== entry.digest) {
      missing += 1;
      repairs.add(entry.changeId);
    }
  }

  const blobs = index(catalog.blobs);
  const heldBlobs = new Map(inventory.blobs.map((b) => [key(b.repository, b.digest), b.state]));
  for (const [name, entry] of blobs) {
    if (entry.young) continue;
    const state = heldBlobs.get(name);
    if (entry.deleted) {
      if (state === undefined) continue;
      extras.push(`blob ${name}`);
      deletes.add(entry.changeId);
      continue;
    }
    if (state === undefined) missing += 1;
    else if (state !== 'present') pendingBlobs += 1;
    else continue;
    repairs.add(entry.changeId);
  }
  return { missing, pendingBlobs, repairs: [...repairs], extras, deletes: [...deletes] };
}

function key(repository: string, name: string): string {
  return `${repository} ${name}`;
}

const PAGE_SIZE = 1000;
/** One page re-hashes up to a page of blobs when verifying: allow for large layers. */
const PAGE_DEADLINE_MS = { verify: 600_000, plain: 30_000 };

/** The region's inventory, page by page over its replica protocol, through `dialer` (which signs each call with the control plane's service token). */
export const inventoryOverGrpc = (dialer: ReplicaDialer): InventoryReader => async (region, options) => {
  const client = dialer.dial(region);
  const inventory: RegionInventory = { manifests: [], tags: [], blobs: [], unrelayed: 0 };
  try {
    let pageToken = '';
    do {
      const page = await new Promise<ListInventoryReply>((resolve, reject) => {
        const deadline = new Date(Date.now() + (options.verify ? PAGE_DEADLINE_MS.verify : PAGE_DEADLINE_MS.plain));
        client.ListInventory({ pageToken, pageSize: PAGE_SIZE, verify: options.verify }, { deadline }, (err, reply) => (err || !reply ? reject(err) : resolve(reply)));
      });
      for (const m of page.manifests ?? []) inventory.manifests.push({ repository: m.repository!, digest: m.digest! });
      for (const t of page.tags ?? []) inventory.tags.push({ repository: t.repository!, tag: t.tag!, digest: t.digest!, hlc: BigInt(t.clock?.hlc || '0'), origin: t.clock?.origin ?? '' });
      for (const b of page.blobs ?? []) inventory.blobs.push({ repository: b.repository!, digest: b.digest!, state: b.state! });
      pageToken = page.nextPageToken ?? '';
      if (!pageToken) inventory.unrelayed = Number(page.unrelayed ?? 0);
    } while (pageToken);
  } finally {
    client.close();
  }
  return inventory;
};

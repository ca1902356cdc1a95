import { distanceKm, REPLICATION_TARGET_STATES, type RegionRecord } from '@meridian/proto';

/**
 * The control plane's region list, read at most once per `ttlMs` however many jobs ask: jobs
 * start by the hundred during a backfill, and a region's state changes rarely, so a second-old
 * list is fresh enough to decide whether a target still takes work.
 */
export class RegionDirectory {
  private cached: { at: number; regions: Promise<RegionRecord[]> } | undefined;

  constructor(
    private readonly source: { listRegions(): Promise<RegionRecord[]> },
    private readonly ttlMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  regions(): Promise<RegionRecord[]> {
    const now = this.now();
    if (!this.cached || now - this.cached.at >= this.ttlMs) {
      const regions = this.source.listRegions();
      const entry = { at: now, regions };
      this.cached = entry;
      // A failed read is not kept: the next job asks again.
      regions.catch(() => {
        if (this.cached === entry) this.cached = undefined;
      });
    }
    return this.cached.regions;
  }
}

/**
 * Where to read a change's content from, best first: the origin (it wrote the change, so it
 * holds the content unless it has been deleted since), then every other active region, nearest
 * to the target first, since the copy travels from there. The target itself is never a source.
 */
export function sourceOrder(regions: RegionRecord[], origin: string, target: RegionRecord): RegionRecord[] {
  const others = regions
    .filter((r) => r.name !== origin && r.name !== target.name && r.state === 'active')
    .map((r) => ({ region: r, km: distanceKm(r, target) }))
    .sort((a, b) => a.km - b.km || (a.region.name < b.region.name ? -1 : 1))
    .map((entry) => entry.region);
  const originRegion = regions.find((r) => r.name === origin && r.name !== target.name);
  return originRegion ? [originRegion, ...others] : others;
}

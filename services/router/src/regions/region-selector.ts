import { distanceKm, type Coordinates } from '@meridian/proto/geo';
import type { RegionRecord } from '@meridian/proto/jobs';

/** The regions as the control plane lists them, and which of them pass their health probes. */
export interface RegionView {
  regions(): readonly RegionRecord[];
  isHealthy(name: string): boolean;
}

/**
 * Which regions a client may be sent to, nearest first. A region is routable when the control
 * plane lists it `active` (an `adding` region lacks part of the catalog, a `draining` one is on
 * its way out), its routing switch is on, and its health probes pass.
 *
 * Rankings are kept per place and computed again only after the routable set changed
 * (`invalidate()`, which the region list and the health monitor call), so a request costs a map
 * lookup, not a sort of great-circle distances.
 */
export class RegionSelector {
  private routable: RegionRecord[] | undefined;
  private readonly rankings = new Map<string, RegionRecord[]>();

  constructor(
    private readonly view: RegionView,
    /** Where clients the location table does not place are taken to be: this region's place. */
    private readonly defaultRegion?: string,
  ) {}

  /** Forgets every ranking: the regions, their states, switches or health changed. */
  invalidate(): void {
    this.routable = undefined;
    this.rankings.clear();
  }

  /** The regions clients may be sent to now, by name. */
  routableRegions(): readonly RegionRecord[] {
    this.routable ??= this.view
      .regions()
      .filter((region) => region.state === 'active' && region.routing && this.view.isHealthy(region.name))
      .sort((a, b) => compareNames(a.name, b.name));
    return this.routable;
  }

  /**
   * The routable regions for a request, best first:
   * - with a region hint (the `Meridian-Region` header) naming a listed region: that region if
   *   routable, then the others nearest to it, so a pinned client still fails over to a neighbour;
   * - from a client the location table places: nearest to it first (ties by name);
   * - otherwise: as for a client at the default region's place, or by name without one.
   */
  rank(client: Coordinates | undefined, hint?: string): readonly RegionRecord[] {
    if (hint !== undefined) {
      const hinted = this.view.regions().find((region) => region.name === hint);
      if (hinted) return this.rankFrom(`hint:${hint}`, hinted, hinted.name);
    }
    if (client) return this.rankFrom(`${client.lat},${client.lon}`, client);
    const fallback = this.defaultRegion === undefined ? undefined : this.view.regions().find((region) => region.name === this.defaultRegion);
    return fallback ? this.rankFrom(`hint:${fallback.name}`, fallback, fallback.name) : this.routableRegions();
  }

  private rankFrom(key: string, place: Coordinates, first?: string): RegionRecord[] {
    let ranking = this.rankings.get(key);
    if (!ranking) {
      ranking = this.routableRegions()
        .map((region) => ({ region, km: region.name === first ? -1 : distanceKm(place, region) }))
        .sort((a, b) => a.km - b.km || compareNames(a.region.name, b.region.name))
        .map((entry) => entry.region);
      // Bounded: places come from the location table's rows and the region list, not from requests.
      this.rankings.set(key, ranking);
    }
    return ranking;
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

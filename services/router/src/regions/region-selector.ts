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
 * lookup, not a sort of great-circle distances. A client's place is remembered by the object
 * itself (the ClientLocator hands out one per row of its table), so the lookup builds no key.
 */
export class RegionSelector {
  private routable: RegionRecord[] | undefined;
  /** Rankings for placed clients; weak, so places a caller makes up on the fly are not kept. */
  private fromPlace = new WeakMap<Coordinates, RegionRecord[]>();
  /** Rankings starting at a named region (a hint, or the default region), by its name. */
  private readonly fromRegion = new Map<string, RegionRecord[]>();

  constructor(
    private readonly view: RegionView,
    /** Where clients the location table does not place are taken to be: this region's place. */
    private readonly defaultRegion?: string,
  ) {}

  /** Forgets every ranking: the regions, their states, switches or health changed. */
  invalidate(): void {
    this.routable = undefined;
    this.fromPlace = new WeakMap();
    this.fromRegion.clear();
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
      const hinted = this.rankFromRegion(hint);
      if (hinted) return hinted;
    }
    if (client) {
      let ranking = this.fromPlace.get(client);
      if (!ranking) this.fromPlace.set(client, (ranking = this.nearestTo(client)));
      return ranking;
    }
    return (this.defaultRegion === undefined ? undefined : this.rankFromRegion(this.defaultRegion)) ?? this.routableRegions();
  }

  /** The ranking that starts at the listed region `name` (routable or not); undefined for a name not listed. */
  private rankFromRegion(name: string): RegionRecord[] | undefined {
    let ranking = this.fromRegion.get(name);
    if (!ranking) {
      const region = this.view.regions().find((listed) => listed.name === name);
      if (!region) return undefined;
      // Bounded: only names of listed regions get here.
      this.fromRegion.set(name, (ranking = this.nearestTo(region, name)));
    }
    return ranking;
  }

  private nearestTo(place: Coordinates, first?: string): RegionRecord[] {
    return this.routableRegions()
      .map((region) => ({ region, km: region.name === first ? -1 : distanceKm(place, region) }))
      .sort((a, b) => a.km - b.km || compareNames(a.region.name, b.region.name))
      .map((entry) => entry.region);
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Where regions and clients are relative to each other. The replication worker reads from the
 * source nearest its target, a region fills a blob it lacks from its nearest peer, and the router
 * sends a client to the region nearest it: all by this distance between the coordinates each
 * region is registered with (and, for a client, those its address is placed at).
 */

export interface Coordinates {
  /** Degrees, -90 to 90. */
  lat: number;
  /** Degrees, -180 to 180. */
  lon: number;
}

/** Great-circle distance (haversine), in kilometres. */
export function distanceKm(a: Coordinates, b: Coordinates): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

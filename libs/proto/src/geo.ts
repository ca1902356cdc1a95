/**
 * Where regions are relative to each other. The replication worker reads from the source nearest
 * its target, and a region fills a blob it lacks from its nearest peer: both by this distance
 * between the coordinates each region is registered with.
 */

/** Great-circle distance (haversine), in kilometres. */
export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

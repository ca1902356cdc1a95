import { describe, expect, it } from 'vitest';
import { distanceKm } from './geo.js';

describe('distanceKm', () => {
  it('is the great-circle distance', () => {
    const fra = { lat: 50.1, lon: 8.7 };
    const iad = { lat: 38.9, lon: -77.4 };
    expect(Math.round(distanceKm(fra, iad))).toBeGreaterThan(6400);
    expect(Math.round(distanceKm(fra, iad))).toBeLessThan(6600);
    expect(distanceKm(iad, iad)).toBe(0);
  });

  it('goes the short way across the antimeridian', () => {
    expect(distanceKm({ lat: 0, lon: 179 }, { lat: 0, lon: -179 })).toBeLessThan(250);
  });
});

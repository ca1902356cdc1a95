import { describe, expect, it } from 'vitest';
import { distanceKm, type RegionRecord } from '@meridian/proto';
import { RegionDirectory, sourceOrder } from './region-directory.js';

function region(name: string, lat: number, lon: number, state: RegionRecord['state'] = 'active'): RegionRecord {
  return { name, http: `http://${name}`, grpc: `${name}:1`, lat, lon, state, routing: true, heartbeatAt: null, backfill: null };
}

const fra = region('fra', 50.1, 8.7);
const iad = region('iad', 38.9, -77.4);
const yul = region('yul', 45.5, -73.6);
const syd = region('syd', -33.9, 151.2);

describe('sourceOrder', () => {
  it('puts the origin first, then the other active regions nearest the target first, never the target', () => {
    expect(sourceOrder([syd, fra, iad, yul], 'fra', iad).map((r) => r.name)).toEqual(['fra', 'yul', 'syd']);
  });

  it('reads from no region that is adding or draining, but from the origin whatever its state', () => {
    const origin = { ...fra, state: 'draining' as const };
    expect(sourceOrder([origin, iad, { ...yul, state: 'adding' }, { ...syd, state: 'draining' }], 'fra', iad).map((r) => r.name)).toEqual(['fra']);
  });

  it('has no origin entry when the origin is gone from the list', () => {
    expect(sourceOrder([iad, yul], 'fra', iad).map((r) => r.name)).toEqual(['yul']);
  });
});

describe('distanceKm', () => {
  it('is the great-circle distance', () => {
    expect(Math.round(distanceKm(fra, iad))).toBeGreaterThan(6400);
    expect(Math.round(distanceKm(fra, iad))).toBeLessThan(6600);
    expect(distanceKm(yul, yul)).toBe(0);
  });
});

describe('RegionDirectory', () => {
  it('asks the control plane at most once per ttl, and again after a failed read', async () => {
    let now = 0;
    let reads = 0;
    let fail = false;
    const directory = new RegionDirectory(
      {
        listRegions: async () => {
          reads++;
          if (fail) throw new Error('control plane away');
          return [fra];
        },
      },
      1000,
      () => now,
    );
    await Promise.all([directory.regions(), directory.regions()]);
    now = 999;
    await directory.regions();
    expect(reads).toBe(1);
    now = 1000;
    fail = true;
    await expect(directory.regions()).rejects.toThrow('control plane away');
    fail = false;
    expect(await directory.regions()).toEqual([fra]);
    expect(reads).toBe(3);
  });
});

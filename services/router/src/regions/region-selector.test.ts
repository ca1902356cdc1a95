import { describe, expect, it } from 'vitest';
import type { RegionRecord } from '@meridian/proto/jobs';
import { RegionSelector } from './region-selector.js';

function region(name: string, lat: number, lon: number, extra: Partial<RegionRecord> = {}): RegionRecord {
  return { name, http: `http://${name}.example`, grpc: `${name}:1`, lat, lon, state: 'active', routing: true, heartbeatAt: null, backfill: null, ...extra };
}

const dublin = region('eu-west', 53.35, -6.26);
const virginia = region('us-east', 38.9, -77.04);
const singapore = region('ap-southeast', 1.35, 103.82);

function selectorOf(regions: RegionRecord[], unhealthy: string[] = [], defaultRegion?: string) {
  const down = new Set(unhealthy);
  return new RegionSelector({ regions: () => regions, isHealthy: (name) => !down.has(name) }, defaultRegion);
}

const names = (list: readonly RegionRecord[]) => list.map((entry) => entry.name);

describe('RegionSelector.rank', () => {
  it('puts the region nearest the client first (great-circle distance), then the next nearest', () => {
    const selector = selectorOf([singapore, dublin, virginia]);
    expect(names(selector.rank({ lat: 51.5, lon: -0.1 }))).toEqual(['eu-west', 'us-east', 'ap-southeast']);
    expect(names(selector.rank({ lat: 40.7, lon: -74 }))).toEqual(['us-east', 'eu-west', 'ap-southeast']);
    expect(names(selector.rank({ lat: -33.9, lon: 151.2 }))).toEqual(['ap-southeast', 'us-east', 'eu-west']);
  });

  it('routes to active regions only, whose routing switch is on and which pass their probes', () => {
    const regions = [dublin, virginia, singapore, region('eu-central', 50.11, 8.68, { state: 'adding' }), region('us-west', 45.5, -122.7, { state: 'draining' })];
    const london = { lat: 51.5, lon: -0.1 };
    expect(names(selectorOf(regions).rank(london))).toEqual(['eu-west', 'us-east', 'ap-southeast']);
    expect(names(selectorOf(regions, ['eu-west']).rank(london))).toEqual(['us-east', 'ap-southeast']);
    expect(names(selectorOf([{ ...dublin, routing: false }, virginia]).rank(london))).toEqual(['us-east']);
    expect(selectorOf([dublin], ['eu-west']).rank(london)).toEqual([]);
  });

  it('with a region hint, puts that region first and its neighbours after; a hinted region that cannot take requests hands over to its nearest', () => {
    const selector = selectorOf([dublin, virginia, singapore]);
    expect(names(selector.rank({ lat: 51.5, lon: -0.1 }, 'ap-southeast'))).toEqual(['ap-southeast', 'eu-west', 'us-east']);
    expect(names(selectorOf([dublin, virginia, singapore], ['us-east']).rank(undefined, 'us-east'))).toEqual(['eu-west', 'ap-southeast']);
    // An unknown name is no hint.
    expect(names(selector.rank({ lat: 40.7, lon: -74 }, 'mars'))).toEqual(['us-east', 'eu-west', 'ap-southeast']);
  });

  it('takes a client the location table does not place to be at the default region, or ranks by name without one', () => {
    expect(names(selectorOf([dublin, virginia, singapore], [], 'us-east').rank(undefined))).toEqual(['us-east', 'eu-west', 'ap-southeast']);
    expect(names(selectorOf([dublin, virginia, singapore]).rank(undefined))).toEqual(['ap-southeast', 'eu-west', 'us-east']);
  });

  it('keeps rankings until invalidated', () => {
    const down = new Set<string>();
    const selector = new RegionSelector({ regions: () => [dublin, virginia], isHealthy: (name) => !down.has(name) });
    const london = { lat: 51.5, lon: -0.1 };
    expect(names(selector.rank(london))).toEqual(['eu-west', 'us-east']);
    down.add('eu-west');
    expect(names(selector.rank(london))).toEqual(['eu-west', 'us-east']);
    selector.invalidate();
    expect(names(selector.rank(london))).toEqual(['us-east']);
  });
});

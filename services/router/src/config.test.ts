import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os, { availableParallelism } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const CONTROL_PLANE = { MERIDIAN_CONTROL_PLANE: 'http://127.0.0.1:5100/' };
let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(path.join(os.tmpdir(), 'meridian-router-config-'));
});
afterAll(() => rm(folder, { recursive: true, force: true }));

describe('loadConfig', () => {
  it('has defaults for everything but the control plane', () => {
    expect(loadConfig({ ...CONTROL_PLANE, PORT: '' })).toEqual({
      host: '127.0.0.1',
      port: 5300,
      workers: availableParallelism(),
      controlPlaneUrl: 'http://127.0.0.1:5100',
      regionRefreshMs: 5000,
      probe: { intervalMs: 1000, timeoutMs: 1000, unhealthyAfter: 3, healthyAfter: 2 },
      locations: [],
      trustedProxies: [],
      connectTimeoutMs: 2000,
      upstreamTimeoutMs: 300_000,
      pipelinedConnections: 4,
      pipelineStallMs: 250,
      slowClientBufferBytes: 64 * 1024 * 1024,
      clientWriteTimeoutMs: 30_000,
      idleTimeoutMs: 300_000,
      shutdownGraceMs: 30_000,
      logLevel: 'info',
    });
  });

  it('requires the control plane, naming the variable', () => {
    expect(() => loadConfig({})).toThrow('invalid configuration: MERIDIAN_CONTROL_PLANE: required: the control plane admin API URL, e.g. http://127.0.0.1:5100');
    expect(() => loadConfig({ MERIDIAN_CONTROL_PLANE: 'ftp://x' })).toThrow('MERIDIAN_CONTROL_PLANE: expected an http:// or https:// URL');
  });

  it('names each bad variable', () => {
    expect(() => loadConfig({ ...CONTROL_PLANE, MERIDIAN_ROUTER_UNHEALTHY_AFTER: '0', MERIDIAN_ROUTER_PROBE_INTERVAL_SECONDS: 'often', MERIDIAN_WORKERS: '0' })).toThrow(
      /MERIDIAN_WORKERS: expected a whole number from 1 to 64; MERIDIAN_ROUTER_PROBE_INTERVAL_SECONDS: expected a number of seconds above 0.*; MERIDIAN_ROUTER_UNHEALTHY_AFTER: expected a whole number from 1 to 100/,
    );
    expect(() => loadConfig({ ...CONTROL_PLANE, MERIDIAN_ROUTER_TRUSTED_PROXIES: '10.0.0.0/8,lb' })).toThrow(
      'invalid configuration: MERIDIAN_ROUTER_TRUSTED_PROXIES: "lb" is not an address range like 10.0.0.0/8',
    );
  });

  it('reads the location table from MERIDIAN_ROUTER_LOCATIONS or from the file MERIDIAN_ROUTER_LOCATIONS_FILE names', async () => {
    const table = [{ cidr: '127.0.1.0/24', lat: 53.35, lon: -6.26, name: 'near eu-west' }];
    expect(loadConfig({ ...CONTROL_PLANE, MERIDIAN_ROUTER_LOCATIONS: JSON.stringify(table) }).locations).toEqual(table);
    await writeFile(path.join(folder, 'locations.json'), JSON.stringify(table));
    expect(loadConfig({ ...CONTROL_PLANE, MERIDIAN_ROUTER_LOCATIONS_FILE: 'locations.json' }, folder).locations).toEqual(table);
  });

  it('says what is wrong with a location table, naming the variable and the row', async () => {
    const bad = (env: Record<string, string>) => () => loadConfig({ ...CONTROL_PLANE, ...env }, folder);
    expect(bad({ MERIDIAN_ROUTER_LOCATIONS: '[{"cidr":' })).toThrow(/^invalid configuration: MERIDIAN_ROUTER_LOCATIONS: not JSON \(/);
    expect(bad({ MERIDIAN_ROUTER_LOCATIONS: '[{"cidr":"10.0.0.0/8","lat":1,"lon":200}]' })).toThrow(
      'invalid configuration: MERIDIAN_ROUTER_LOCATIONS: row 0.lon: Too big: expected number to be <=180',
    );
    expect(bad({ MERIDIAN_ROUTER_LOCATIONS: '{}' })).toThrow(/^invalid configuration: MERIDIAN_ROUTER_LOCATIONS: the table: /);
    expect(bad({ MERIDIAN_ROUTER_LOCATIONS_FILE: 'absent.json' })).toThrow(
      `invalid configuration: MERIDIAN_ROUTER_LOCATIONS_FILE: cannot read ${path.join(folder, 'absent.json')} (ENOENT)`,
    );
    expect(bad({ MERIDIAN_ROUTER_LOCATIONS_FILE: 'absent.json', MERIDIAN_ROUTER_LOCATIONS: '[]' })).toThrow('are both set; set one of them');
  });
});

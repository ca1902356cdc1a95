import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('gives every setting its default when the environment is empty: the admin API on loopback', () => {
    expect(loadConfig({})).toEqual({
      host: '127.0.0.1',
      port: 5100,
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/meridian_control',
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'bull',
      requeueIntervalMs: 10_000,
      reconcileIntervalMs: 300_000,
      reconcileVerifyIntervalMs: 86_400_000,
      dashboardScrapeIntervalMs: 3_000,
      logLevel: 'info',
    });
  });

  it('takes an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', MERIDIAN_REQUEUE_INTERVAL_SECONDS: '' })).toMatchObject({ port: 5100, requeueIntervalMs: 10_000 });
  });

  it('stops on a bad value with one line naming the variable', () => {
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/^invalid configuration: PORT: /);
    expect(() => loadConfig({ REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/^invalid configuration: REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL$/);
    expect(() => loadConfig({ CONTROL_PLANE_DATABASE_URL: 'not a url' })).toThrow(/CONTROL_PLANE_DATABASE_URL/);
    expect(() => loadConfig({ MERIDIAN_REQUEUE_INTERVAL_SECONDS: '0' })).toThrow(/MERIDIAN_REQUEUE_INTERVAL_SECONDS/);
    expect(() => loadConfig({ MERIDIAN_QUEUE_PREFIX: 'a:b' })).toThrow(/MERIDIAN_QUEUE_PREFIX/);
    expect(() => loadConfig({ MERIDIAN_DASHBOARD_SCRAPE_INTERVAL_SECONDS: '0' })).toThrow(/^invalid configuration: MERIDIAN_DASHBOARD_SCRAPE_INTERVAL_SECONDS: /);
  });
});

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const SECRET = 'a cluster secret of at least thirty-two characters';
const REQUIRED = { MERIDIAN_CLUSTER_SECRET: SECRET };

describe('loadConfig', () => {
  it('gives every setting but the cluster secret its default: the admin API on loopback, auth on', () => {
    expect(loadConfig(REQUIRED)).toEqual({
      host: '127.0.0.1',
      port: 5100,
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/meridian_control',
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'bull',
      requeueIntervalMs: 10_000,
      reconcileIntervalMs: 300_000,
      reconcileVerifyIntervalMs: 86_400_000,
      auditRetentionDays: 365,
      dashboardScrapeIntervalMs: 3_000,
      shutdownGraceMs: 30_000,
      clusterSecret: SECRET,
      trustedProxies: [],
      auth: { dataDir: path.resolve('data/control-plane'), signInLimits: { perName: 10, perAddress: 50, windowSeconds: 300 } },
      logLevel: 'info',
    });
  });

  it('takes an empty variable as unset', () => {
    expect(loadConfig({ ...REQUIRED, PORT: '', MERIDIAN_REQUEUE_INTERVAL_SECONDS: '' })).toMatchObject({ port: 5100, requeueIntervalMs: 10_000 });
  });

  it('stops on a bad value with one line naming the variable', () => {
    expect(() => loadConfig({ ...REQUIRED, PORT: '70000' })).toThrow(/^invalid configuration: PORT: /);
    expect(() => loadConfig({ ...REQUIRED, REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/^invalid configuration: REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL$/);
    expect(() => loadConfig({ ...REQUIRED, CONTROL_PLANE_DATABASE_URL: 'not a url' })).toThrow(/CONTROL_PLANE_DATABASE_URL/);
    expect(() => loadConfig({ ...REQUIRED, MERIDIAN_REQUEUE_INTERVAL_SECONDS: '0' })).toThrow(/MERIDIAN_REQUEUE_INTERVAL_SECONDS/);
    expect(() => loadConfig({ ...REQUIRED, MERIDIAN_QUEUE_PREFIX: 'a:b' })).toThrow(/MERIDIAN_QUEUE_PREFIX/);
    expect(() => loadConfig({ ...REQUIRED, MERIDIAN_TRUSTED_PROXIES: 'proxy.internal' })).toThrow(/^invalid configuration: MERIDIAN_TRUSTED_PROXIES: "proxy.internal" is not an address range like 10.0.0.0\/8$/);
    expect(() => loadConfig({ ...REQUIRED, MERIDIAN_DASHBOARD_SCRAPE_INTERVAL_SECONDS: '0' })).toThrow(/^invalid configuration: MERIDIAN_DASHBOARD_SCRAPE_INTERVAL_SECONDS: /);
  });

  it('requires MERIDIAN_CLUSTER_SECRET of at least 32 characters, naming it and never showing it', () => {
    expect(() => loadConfig({})).toThrow(/^invalid configuration: MERIDIAN_CLUSTER_SECRET: required: the secret every process of the cluster shares[^\n]*$/);
    const short = () => loadConfig({ MERIDIAN_CLUSTER_SECRET: 'too-short-secret' });
    expect(short).toThrow(/^invalid configuration: MERIDIAN_CLUSTER_SECRET: must be at least 32 characters/);
    expect(short).not.toThrow(/too-short-secret/);
  });

  it('takes MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY together or not at all, and MERIDIAN_TLS_CA', () => {
    expect(loadConfig({ ...REQUIRED, MERIDIAN_TLS_CERT: '/etc/meridian/tls.crt', MERIDIAN_TLS_KEY: '/etc/meridian/tls.key', MERIDIAN_TLS_CA: '/etc/meridian/ca.crt' })).toMatchObject({
      tls: { certFile: '/etc/meridian/tls.crt', keyFile: '/etc/meridian/tls.key' },
      tlsCaFile: '/etc/meridian/ca.crt',
    });
    expect(() => loadConfig({ ...REQUIRED, MERIDIAN_TLS_CERT: '/etc/meridian/tls.crt' })).toThrow(/^invalid configuration: MERIDIAN_TLS_KEY: required with the other/);
  });

  it('with MERIDIAN_AUTH=on, takes the administrator\'s settings; MERIDIAN_AUTH=off has none', () => {
    const secret = { MERIDIAN_CLUSTER_SECRET: 's'.repeat(32) };
    expect(loadConfig({ ...secret, MERIDIAN_AUTH: 'off' }).auth).toBeUndefined();
    expect(() => loadConfig({ ...secret, MERIDIAN_AUTH: 'yes' })).toThrow(/^invalid configuration: MERIDIAN_AUTH: /);
    const config = loadConfig({ ...secret, MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: 'a long admin password', MERIDIAN_DATA_DIR: '/var/lib/cp' });
    expect(config.auth).toEqual({ adminPassword: 'a long admin password', dataDir: '/var/lib/cp', signInLimits: { perName: 10, perAddress: 50, windowSeconds: 300 } });
    const limits = { MERIDIAN_SIGN_IN_FAILURES_PER_NAME: '3', MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS: '7', MERIDIAN_SIGN_IN_WINDOW_SECONDS: '2' };
    expect(loadConfig({ ...secret, MERIDIAN_AUTH: 'on', ...limits }).auth?.signInLimits).toEqual({ perName: 3, perAddress: 7, windowSeconds: 2 });
    expect(() => loadConfig({ ...secret, MERIDIAN_AUTH: 'on', MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS: '0' })).toThrow(/MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS/);
    expect(() => loadConfig({ ...secret, MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: 'short' })).toThrow(/MERIDIAN_ADMIN_PASSWORD: must be at least 12 characters/);
  });
});

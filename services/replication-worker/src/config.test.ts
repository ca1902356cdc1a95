import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const SECRET = 'a cluster secret of at least thirty-two characters';
const CONTROL_PLANE = { MERIDIAN_CONTROL_PLANE: 'http://127.0.0.1:5100/', MERIDIAN_CLUSTER_SECRET: SECRET };

describe('loadConfig', () => {
  it('gives every setting but the control plane and the cluster secret its default', () => {
    expect(loadConfig(CONTROL_PLANE)).toEqual({
      host: '127.0.0.1',
      port: 5200,
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'bull',
      controlPlaneUrl: 'http://127.0.0.1:5100',
      clusterSecret: SECRET,
      workerConcurrency: 8,
      regionConcurrency: 4,
      shutdownGraceMs: 30_000,
      logLevel: 'info',
    });
  });

  it('requires MERIDIAN_CONTROL_PLANE, saying so in one line', () => {
    expect(() => loadConfig({})).toThrow(/^invalid configuration: MERIDIAN_CONTROL_PLANE: required: the control plane admin API URL[^\n]*$/);
    expect(() => loadConfig({ MERIDIAN_CONTROL_PLANE: '' })).toThrow(/MERIDIAN_CONTROL_PLANE: required/);
  });

  it('requires MERIDIAN_CLUSTER_SECRET of at least 32 characters, naming it and never showing it', () => {
    const missing = () => loadConfig({ MERIDIAN_CONTROL_PLANE: 'http://127.0.0.1:5100' });
    expect(missing).toThrow(/^invalid configuration: MERIDIAN_CLUSTER_SECRET: required: the secret every process of the cluster shares[^\n]*$/);
    const short = () => loadConfig({ ...CONTROL_PLANE, MERIDIAN_CLUSTER_SECRET: 'too-short-secret' });
    expect(short).toThrow(/MERIDIAN_CLUSTER_SECRET: must be at least 32 characters/);
    expect(short).not.toThrow(/too-short-secret/);
  });

  it('stops on a bad value, naming the variable', () => {
    expect(() => loadConfig({ ...CONTROL_PLANE, MERIDIAN_REGION_CONCURRENCY: '0' })).toThrow(/MERIDIAN_REGION_CONCURRENCY/);
    expect(() => loadConfig({ ...CONTROL_PLANE, MERIDIAN_WORKER_CONCURRENCY: 'many' })).toThrow(/MERIDIAN_WORKER_CONCURRENCY/);
    expect(() => loadConfig({ ...CONTROL_PLANE, REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => loadConfig({ ...CONTROL_PLANE, MERIDIAN_QUEUE_PREFIX: 'a:b' })).toThrow(/MERIDIAN_QUEUE_PREFIX/);
    expect(() => loadConfig({ ...CONTROL_PLANE, MERIDIAN_CONTROL_PLANE: 'not a url' })).toThrow(/MERIDIAN_CONTROL_PLANE: Invalid URL/);
  });

  it('takes MERIDIAN_TLS_CA, the authority its replica clients trust', () => {
    expect(loadConfig({ ...CONTROL_PLANE, MERIDIAN_TLS_CA: '/etc/meridian/ca.crt' }).tlsCaFile).toBe('/etc/meridian/ca.crt');
    expect(loadConfig(CONTROL_PLANE).tlsCaFile).toBeUndefined();
  });

  it('takes MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY together or not at all, to serve /metrics and health over HTTPS', () => {
    expect(loadConfig({ ...CONTROL_PLANE, MERIDIAN_TLS_CERT: '/etc/meridian/tls.crt', MERIDIAN_TLS_KEY: '/etc/meridian/tls.key' }).tls).toEqual({ certFile: '/etc/meridian/tls.crt', keyFile: '/etc/meridian/tls.key' });
    expect(loadConfig(CONTROL_PLANE).tls).toBeUndefined();
    expect(() => loadConfig({ ...CONTROL_PLANE, MERIDIAN_TLS_CERT: '/etc/meridian/tls.crt' })).toThrow(/^invalid configuration: MERIDIAN_TLS_KEY: required with the other/);
  });

  it('takes an empty variable as unset', () => {
    expect(loadConfig({ ...CONTROL_PLANE, MERIDIAN_WORKER_CONCURRENCY: '', REDIS_URL: '' })).toMatchObject({ workerConcurrency: 8, redisUrl: 'redis://127.0.0.1:6379' });
  });
});

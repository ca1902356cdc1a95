import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('loadConfig', () => {
  it('gives every setting its default when the environment is empty', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ host: '127.0.0.1', port: 5000, region: 'local', directWrites: true, storageDriver: 'filesystem' });
    expect(config.dataDir).toBe(path.resolve('.meridian/data'));
  });

  it('takes an empty variable as unset, not as 0 or a failure', () => {
    expect(loadConfig({ PORT: '', MERIDIAN_WORKERS: '', MERIDIAN_REGION: '', MERIDIAN_DIRECT_WRITES: '' })).toMatchObject({
      port: 5000,
      region: 'local',
      directWrites: true,
    });
  });

  it('turns direct writes off with MERIDIAN_DIRECT_WRITES=false, and accepts only true or false', () => {
    expect(loadConfig({ MERIDIAN_DIRECT_WRITES: 'false' }).directWrites).toBe(false);
    expect(() => loadConfig({ MERIDIAN_DIRECT_WRITES: 'no' })).toThrow(/MERIDIAN_DIRECT_WRITES/);
  });

  it('stops on a bad value, naming the variable', () => {
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT/);
    expect(() => loadConfig({ MERIDIAN_UPLOAD_SECRET: 'short' })).toThrow(/MERIDIAN_UPLOAD_SECRET: must be at least 32 characters/);
  });
});

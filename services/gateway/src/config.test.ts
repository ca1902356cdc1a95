import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, wantsStackTraces } from './config.js';
import { StartupError } from './startup-errors.js';

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

  it('stops on a bad value with one line naming the variable, the value and what it takes', () => {
    expect(() => loadConfig({ PORT: '70000' })).toThrow('invalid configuration: PORT="70000": expected a whole number from 0 to 65535. Set it right, or unset it for its default.');
    expect(() => loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud' })).toThrow(
      /^invalid configuration: PORT="abc": expected a whole number from 0 to 65535; LOG_LEVEL="loud": expected one of fatal, .*, silent\. Set them right/,
    );
    expect(() => loadConfig({ MERIDIAN_WORKERS: '1.5' })).toThrow(/MERIDIAN_WORKERS="1.5": expected a whole number from 1 to 64/);
    expect(() => loadConfig({ MERIDIAN_IDLE_TIMEOUT_SECONDS: '-1' })).toThrow(/MERIDIAN_IDLE_TIMEOUT_SECONDS="-1": expected a number above 0/);
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(StartupError);
  });

  // Every gateway of every region keeps the record of an ended upload session for this bound,
  // so no gateway may issue an upload URL that lasts longer.
  it('refuses an upload idle limit above a week, naming the variable', () => {
    expect(loadConfig({ MERIDIAN_UPLOAD_MAX_IDLE_HOURS: '168' }).uploadMaxIdleMs).toBe(168 * 3600_000);
    expect(() => loadConfig({ MERIDIAN_UPLOAD_MAX_IDLE_HOURS: '169' })).toThrow(/^invalid configuration: MERIDIAN_UPLOAD_MAX_IDLE_HOURS="169": expected at most 168[^\n]*$/);
  });

  it('takes a blank variable as unset too, rather than as 0 (a random port)', () => {
    expect(loadConfig({ PORT: '  ' }).port).toBe(5000);
  });

  it('never shows the upload secret, only how short it is', () => {
    const run = () => loadConfig({ MERIDIAN_UPLOAD_SECRET: 'hunter2hunter2' });
    expect(run).toThrow(/MERIDIAN_UPLOAD_SECRET \(14 characters\): must be at least 32 characters/);
    expect(run).not.toThrow(/hunter2/);
  });

  it('requires MERIDIAN_CLUSTER_SECRET for a region of a cluster, naming it and never showing it', () => {
    const secret = 'a cluster secret of at least thirty-two characters';
    expect(loadConfig({}).clusterSecret).toBeUndefined();
    expect(() => loadConfig({ MERIDIAN_GRPC_PORT: '7001' })).toThrow(/^invalid configuration: MERIDIAN_CLUSTER_SECRET: required for a region of a cluster[^\n]*$/);
    expect(() => loadConfig({ MERIDIAN_CONTROL_PLANE: 'http://127.0.0.1:5100' })).toThrow(/MERIDIAN_CLUSTER_SECRET: required/);
    const short = () => loadConfig({ MERIDIAN_GRPC_PORT: '7001', MERIDIAN_CLUSTER_SECRET: 'hunter2hunter2' });
    expect(short).toThrow(/MERIDIAN_CLUSTER_SECRET \(14 characters\): must be at least 32 characters/);
    expect(short).not.toThrow(/hunter2/);
    expect(loadConfig({ MERIDIAN_GRPC_PORT: '7001', MERIDIAN_CLUSTER_SECRET: secret })).toMatchObject({ grpc: { port: 7001 }, clusterSecret: secret });
  });

  it('takes MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY together or not at all, and MERIDIAN_TLS_CA', () => {
    expect(loadConfig({}).tls).toBeUndefined();
    expect(loadConfig({ MERIDIAN_TLS_CERT: '/etc/meridian/tls.crt', MERIDIAN_TLS_KEY: '/etc/meridian/tls.key', MERIDIAN_TLS_CA: '/etc/meridian/ca.crt' })).toMatchObject({
      tls: { certFile: '/etc/meridian/tls.crt', keyFile: '/etc/meridian/tls.key' },
      tlsCaFile: '/etc/meridian/ca.crt',
    });
    expect(() => loadConfig({ MERIDIAN_TLS_CERT: '/etc/meridian/tls.crt' })).toThrow(/^invalid configuration: MERIDIAN_TLS_KEY: required with the other of MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY/);
    expect(() => loadConfig({ MERIDIAN_TLS_KEY: '/etc/meridian/tls.key' })).toThrow(/^invalid configuration: MERIDIAN_TLS_CERT: required/);
  });

  const DEFAULT_SIGN_IN_LIMITS = { perName: 10, perAddress: 50, windowSeconds: 300 };

  it('turns identity and access on unless MERIDIAN_AUTH=off, and takes its settings', () => {
    // On by default (issue "Identity and access": no registry open to anyone unless asked for).
    expect(loadConfig({}).auth).toEqual({ service: 'meridian', tokenLifetimeSeconds: 300, identitySyncMs: 10_000, signingKeyRotationMs: 86_400_000, signInLimits: DEFAULT_SIGN_IN_LIMITS, anonymousPull: false });
    expect(loadConfig({ MERIDIAN_AUTH: '' }).auth).toEqual({ service: 'meridian', tokenLifetimeSeconds: 300, identitySyncMs: 10_000, signingKeyRotationMs: 86_400_000, signInLimits: DEFAULT_SIGN_IN_LIMITS, anonymousPull: false });
    expect(loadConfig({ MERIDIAN_AUTH: 'off' }).auth).toBeUndefined();
    expect(loadConfig({ MERIDIAN_AUTH: 'off', MERIDIAN_ADMIN_PASSWORD: 'correct horse battery' }).auth).toBeUndefined();
    expect(loadConfig({ MERIDIAN_AUTH: 'on' }).auth).toEqual({ service: 'meridian', tokenLifetimeSeconds: 300, identitySyncMs: 10_000, signingKeyRotationMs: 86_400_000, signInLimits: DEFAULT_SIGN_IN_LIMITS, anonymousPull: false });
    expect(loadConfig({ MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: 'correct horse battery', MERIDIAN_AUTH_TOKEN_SECONDS: '60' }).auth).toEqual({
      adminPassword: 'correct horse battery',
      service: 'meridian',
      tokenLifetimeSeconds: 60,
      identitySyncMs: 10_000,
      signingKeyRotationMs: 86_400_000,
      signInLimits: DEFAULT_SIGN_IN_LIMITS,
      anonymousPull: false,
    });
    expect(() => loadConfig({ MERIDIAN_AUTH: 'yes' })).toThrow(/MERIDIAN_AUTH="yes": expected one of on, off/);
  });

  it('rotates the signing key every MERIDIAN_SIGNING_KEY_ROTATION_HOURS (24 unless set, fractions allowed)', () => {
    expect(loadConfig({ MERIDIAN_SIGNING_KEY_ROTATION_HOURS: '0.5' }).auth?.signingKeyRotationMs).toBe(1_800_000);
    expect(() => loadConfig({ MERIDIAN_SIGNING_KEY_ROTATION_HOURS: '0' })).toThrow(/MERIDIAN_SIGNING_KEY_ROTATION_HOURS/);
    expect(() => loadConfig({ MERIDIAN_SIGNING_KEY_ROTATION_HOURS: 'daily' })).toThrow(/MERIDIAN_SIGNING_KEY_ROTATION_HOURS/);
  });

  it('takes the limits of failed sign-ins, 10 per name and 50 per address in 5 minutes unless set', () => {
    expect(loadConfig({ MERIDIAN_SIGN_IN_FAILURES_PER_NAME: '3', MERIDIAN_SIGN_IN_FAILURES_PER_ADDRESS: '7', MERIDIAN_SIGN_IN_WINDOW_SECONDS: '2' }).auth?.signInLimits).toEqual({
      perName: 3,
      perAddress: 7,
      windowSeconds: 2,
    });
    expect(() => loadConfig({ MERIDIAN_SIGN_IN_FAILURES_PER_NAME: '0' })).toThrow(/MERIDIAN_SIGN_IN_FAILURES_PER_NAME="0": expected a whole number from 1 up/);
    expect(() => loadConfig({ MERIDIAN_SIGN_IN_WINDOW_SECONDS: '1.5' })).toThrow(/MERIDIAN_SIGN_IN_WINDOW_SECONDS/);
  });

  it('takes the share of pulls traced and the most traced in a second, 0.01 and 10 unless set', () => {
    expect(loadConfig({})).toMatchObject({ traceReadRatio: 0.01, traceReadsPerSecond: 1 });
    expect(loadConfig({ MERIDIAN_TRACE_READ_RATIO: '0.5', MERIDIAN_TRACE_READS_PER_SECOND: '0' })).toMatchObject({ traceReadRatio: 0.5, traceReadsPerSecond: 0 });
    expect(() => loadConfig({ MERIDIAN_TRACE_READS_PER_SECOND: '-1' })).toThrow(/MERIDIAN_TRACE_READS_PER_SECOND="-1": expected a whole number from 0 to 100000/);
  });

  it('takes the most pushes and deletes traced in a second, 10 unless set', () => {
    expect(loadConfig({})).toMatchObject({ traceWritesPerSecond: 10 });
    expect(loadConfig({ MERIDIAN_TRACE_WRITES_PER_SECOND: '0' })).toMatchObject({ traceWritesPerSecond: 0 });
    expect(() => loadConfig({ MERIDIAN_TRACE_WRITES_PER_SECOND: '2.5' })).toThrow(/MERIDIAN_TRACE_WRITES_PER_SECOND="2.5": expected a whole number from 0 to 100000/);
  });

  it('lets requests without credentials pull only when MERIDIAN_ANONYMOUS_PULL=on', () => {
    expect(loadConfig({ MERIDIAN_ANONYMOUS_PULL: 'on' }).auth?.anonymousPull).toBe(true);
    expect(loadConfig({ MERIDIAN_ANONYMOUS_PULL: 'off' }).auth?.anonymousPull).toBe(false);
    expect(() => loadConfig({ MERIDIAN_ANONYMOUS_PULL: 'yes' })).toThrow(/MERIDIAN_ANONYMOUS_PULL="yes": expected one of on, off/);
  });

  it('takes how often a region of a cluster copies the identities', () => {
    const cluster = { MERIDIAN_AUTH: 'on', MERIDIAN_CONTROL_PLANE: 'http://127.0.0.1:5100', MERIDIAN_CLUSTER_SECRET: 'x'.repeat(32) };
    expect(loadConfig({ ...cluster, MERIDIAN_IDENTITY_SYNC_SECONDS: '2' }).auth?.identitySyncMs).toBe(2000);
    expect(() => loadConfig({ ...cluster, MERIDIAN_IDENTITY_SYNC_SECONDS: '0' })).toThrow(/MERIDIAN_IDENTITY_SYNC_SECONDS/);
  });

  it('never shows the administrator password, only how short it is', () => {
    const run = () => loadConfig({ MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: 'hunter2' });
    expect(run).toThrow(/MERIDIAN_ADMIN_PASSWORD \(7 characters\): must be at least 12 characters/);
    expect(run).not.toThrow(/hunter2/);
  });

  it('refuses a DATABASE_URL that is no postgres URL or names no usable database, never showing its password', () => {
    const malformed = () => loadConfig({ DATABASE_URL: 'postgres://meridian:hunter2@127.0.0.1:notaport/meridian' });
    expect(malformed).toThrow(/^invalid configuration: DATABASE_URL: expected a URL like postgres:\/\/USER:PASSWORD@HOST:PORT\/DATABASE\./);
    expect(malformed).not.toThrow(/hunter2/);
    const scheme = () => loadConfig({ DATABASE_URL: 'http://meridian:hunter2@127.0.0.1:5432/meridian' });
    expect(scheme).toThrow('DATABASE_URL=http://meridian:*****@127.0.0.1:5432/meridian: expected a postgres:// or postgresql:// URL, not http://');
    expect(scheme).not.toThrow(/hunter2/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/my-registry' })).toThrow(/DATABASE_URL=.*: the database name "my-registry" may hold only letters, digits and _/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432' })).toThrow(/DATABASE_URL=.*: names no database/);
    expect(loadConfig({ DATABASE_URL: 'postgresql://meridian:s3cret@db.internal:6432/registry_eu' }).databaseUrl).toBe('postgresql://meridian:s3cret@db.internal:6432/registry_eu');
  });

  it('asks for stack traces of a failed start only at LOG_LEVEL=debug or trace, whatever else is wrong', () => {
    expect(wantsStackTraces({ LOG_LEVEL: 'debug', PORT: 'abc' })).toBe(true);
    expect(wantsStackTraces({ LOG_LEVEL: 'trace' })).toBe(true);
    expect(wantsStackTraces({ LOG_LEVEL: 'info' })).toBe(false);
    expect(wantsStackTraces({})).toBe(false);
  });
});

describe('MERIDIAN_TRUSTED_PROXIES', () => {
  it('trusts no proxy unless set, and takes addresses and ranges, comma-separated', () => {
    expect(loadConfig({}).trustedProxies).toEqual([]);
    expect(loadConfig({ MERIDIAN_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8,::1' }).trustedProxies).toEqual(['127.0.0.1/32', '10.0.0.0/8', '::1/128']);
  });

  it('stops on an entry that is no address or range, with one line naming the setting and the entry', () => {
    expect(() => loadConfig({ MERIDIAN_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/33' })).toThrow(
      /^invalid configuration: MERIDIAN_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0\/33": "10.0.0.0\/33" is not an address range like 10.0.0.0\/8. Set it right, or unset it for its default.$/,
    );
  });
});

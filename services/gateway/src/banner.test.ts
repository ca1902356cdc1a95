import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startBanner } from './banner.js';
import { loadConfig } from './config.js';

describe('startBanner', () => {
  it('points a lone region at the administrator password its first start made', () => {
    const config = loadConfig({ MERIDIAN_DATA_DIR: '/srv/meridian' });
    expect(startBanner('http://127.0.0.1:5000', config)).toContain(`sign in as admin with the password in ${path.join('/srv/meridian', 'admin-password')}`);
  });

  it('says MERIDIAN_ADMIN_PASSWORD when that is what a lone region applies', () => {
    const config = loadConfig({ MERIDIAN_ADMIN_PASSWORD: 'a long admin password' });
    expect(startBanner('http://127.0.0.1:5000', config)).toContain('sign in as admin with MERIDIAN_ADMIN_PASSWORD');
  });

  // A region of a cluster copies its identities from the control plane and makes no password
  // file of its own, nor applies MERIDIAN_ADMIN_PASSWORD: either pointer would send people to
  // a file that does not exist or a password the region ignores.
  it('sends a cluster region\'s people to the control plane\'s administrator, not to a file the region never made', () => {
    for (const env of [{}, { MERIDIAN_ADMIN_PASSWORD: 'a long admin password' }]) {
      const config = loadConfig({ ...env, MERIDIAN_DATA_DIR: '/srv/eu-west', MERIDIAN_CONTROL_PLANE: 'http://127.0.0.1:5100', MERIDIAN_CLUSTER_SECRET: 'x'.repeat(32) });
      const banner = startBanner('http://127.0.0.1:5000', config);
      expect(banner).toContain('sign in with the cluster\'s identities (the administrator admin and its password are the control plane\'s, http://127.0.0.1:5100)');
      expect(banner).not.toContain('/srv/eu-west');
      expect(banner).not.toContain('MERIDIAN_ADMIN_PASSWORD');
    }
  });

  it('warns in place of sign-in advice when auth is off', () => {
    const banner = startBanner('http://127.0.0.1:5000', loadConfig({ MERIDIAN_AUTH: 'off' }));
    expect(banner).toContain('WARNING: MERIDIAN_AUTH=off');
    expect(banner).not.toContain('sign in');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestControlPlane, type TestControlPlane } from './testing/test-control-plane.js';

// The cluster's audit log keeps MERIDIAN_AUDIT_RETENTION_DAYS (migration 1733700000000): the
// control plane deletes what its regions shipped long ago, and keeps the rest.

let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane({ MERIDIAN_AUDIT_RETENTION_DAYS: '30' });
});
afterAll(async () => {
  await cp?.close();
});

const shipped = (id: number, daysAgo: number) => ({
  id: String(id),
  at: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
  region: 'eu-west',
  identity: 'admin',
  address: '127.0.0.1',
  forwardedFor: null,
  action: 'push',
  target: `team/app:${daysAgo}d`,
  outcome: 'success',
  detail: null,
});

describe('audit retention in the control plane', () => {
  it('deletes the entries older than MERIDIAN_AUDIT_RETENTION_DAYS and keeps the recent ones', async () => {
    // listen() started the schedule, whose first round runs at once: let it finish and stop, so
    // that the round counted below is the test's own.
    await cp.controlPlane.auditRetention.stop();
    const entries = [shipped(1, 400), shipped(2, 31), shipped(3, 29), shipped(4, 0)];
    const stored = await cp.request('POST', '/api/v1/audit/batches', { region: 'eu-west', entries });
    expect(stored).toMatchObject({ status: 200, body: { stored: 4 } });

    expect(await cp.controlPlane.auditRetention.pruneOnce()).toBe(2);
    const log = await cp.request('GET', '/api/v1/audit?limit=1000');
    expect(log.body.entries.map((entry: { target: string }) => entry.target)).toEqual(['team/app:29d', 'team/app:0d']);
  });
});

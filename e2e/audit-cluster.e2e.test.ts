/**
 * The audit log of a cluster, in the control plane: two regions (in-process gateways with
 * MERIDIAN_CONTROL_PLANE) ship their entries to a control plane, which keeps them all, stores an
 * entry shipped twice once, and answers `GET /api/v1/audit` for every region, which
 * `meridian audit --server <control plane>` prints.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, TEST_CLUSTER_SECRET } from '@meridian/testkit';
import type { AuditPage, AuditRecord } from '../libs/proto/src/audit.js';
import { startTestControlPlane, type TestControlPlane } from '../services/control-plane/src/testing/test-control-plane.js';
import { startTestGateway, type TestGateway } from '../services/gateway/src/testing/test-gateway.js';
import { runMeridian } from '../services/cli/src/run-meridian.js';

describe('the audit log of a cluster (control plane)', () => {
  let cp: TestControlPlane;
  const regions: Record<string, TestGateway> = {};

  beforeAll(async () => {
    cp = await startTestControlPlane();
    for (const name of ['eu-west', 'us-east']) {
      regions[name] = await startTestGateway({ MERIDIAN_REGION: name, MERIDIAN_CONTROL_PLANE: cp.url, MERIDIAN_CLUSTER_SECRET: TEST_CLUSTER_SECRET });
    }
  });

  afterAll(async () => {
    await Promise.all(Object.values(regions).map((gateway) => gateway.close()));
    await cp?.close();
  });

  /** The control plane's log, read until `done` holds of it (each region ships about once a second). */
  async function clusterLogUntil(done: (entries: AuditRecord[]) => boolean): Promise<AuditRecord[]> {
    for (let attempt = 0; ; attempt++) {
      const { status, body } = await cp.request<AuditPage>('GET', '/api/v1/audit?limit=1000');
      expect(status).toBe(200);
      if (done(body.entries) || attempt >= 600) return body.entries;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('gathers every region\'s pushes and deletes in the control plane, each with its region', async () => {
    const euImage = await regions['eu-west']!.client.pushImage('team/app', 'v1', buildImage());
    const usImage = await regions['us-east']!.client.pushImage('team/web', 'v2', buildImage());
    const deleted = await regions['us-east']!.client.fetch(regions['us-east']!.client.url('manifest', { name: 'team/web', reference: 'v2' }), { method: 'DELETE' });
    expect(deleted.status).toBe(202);

    const entries = await clusterLogUntil((log) => log.length >= 3);
    const summary = entries.map((entry) => [entry.region, entry.action, entry.target, entry.detail]).sort((a, b) => String(a).localeCompare(String(b)));
    expect(summary).toEqual([
      ['eu-west', 'push', 'team/app:v1', { digest: euImage.digest }],
      ['us-east', 'delete', 'team/web:v2', null],
      ['us-east', 'push', 'team/web:v2', { digest: usImage.digest }],
    ]);
    // Each region keeps its own log too.
    const euLog = (await (await fetch(`${regions['eu-west']!.url}/api/v1/audit`)).json()) as AuditPage;
    expect(euLog.entries.map((entry) => [entry.region, entry.action, entry.target])).toEqual([['eu-west', 'push', 'team/app:v1']]);
  }, 120_000);

  it('stores an entry shipped twice once, and refuses a malformed batch or query', async () => {
    const before = (await clusterLogUntil(() => true)).length;
    const entry: AuditRecord = {
      id: '999999',
      at: new Date().toISOString(),
      region: 'ap-south',
      identity: 'admin',
      address: '192.0.2.1',
      forwardedFor: null,
      action: 'token.create',
      target: 'token ci',
      outcome: 'success',
      detail: null,
    };
    expect((await cp.request('POST', '/api/v1/audit/batches', { region: 'ap-south', entries: [entry] })).body).toEqual({ stored: 1 });
    expect((await cp.request('POST', '/api/v1/audit/batches', { region: 'ap-south', entries: [entry] })).body).toEqual({ stored: 0 });
    expect((await clusterLogUntil(() => true)).length).toBe(before + 1);
    expect((await cp.request('POST', '/api/v1/audit/batches', { region: 'ap-south', entries: [{ ...entry, action: 'steal' }] })).status).toBe(400);
    for (const bad of ['?limit=0', '?since=yesterday', '?after=x']) expect((await cp.request('GET', `/api/v1/audit${bad}`)).status, bad).toBe(400);
  });

  it('prints every region\'s entries with `meridian audit --server <control plane>`', async () => {
    const printed = await runMeridian(['audit', '--since', '1h', '--json', '--server', cp.url], { PATH: process.env.PATH, HOME: process.env.HOME });
    expect(printed.stderr).toBe('');
    const entries = JSON.parse(printed.stdout) as AuditRecord[];
    expect(new Set(entries.map((entry) => entry.region))).toEqual(new Set(['eu-west', 'us-east', 'ap-south']));
  }, 120_000);
});

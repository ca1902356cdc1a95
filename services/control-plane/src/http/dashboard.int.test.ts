import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeBody } from '@meridian/proto';
import { freePort } from '@meridian/testkit';
import type { DashboardSnapshot, RegionCard } from '../dashboard/snapshot-types.js';
import { startTestControlPlane, testChange, TEST_MANIFEST_TYPE, testDigest, type TestControlPlane } from '../testing/test-control-plane.js';

// The dashboard: its figures at /api/v1/dashboard and as Server-Sent Events, and the page itself.
// Regions here are real HTTP endpoints: "eu" and "ap" point at this control plane, which answers
// /readyz as a gateway does; "us" at a port nobody listens on.

let cp: TestControlPlane;
let seq = 0;

beforeAll(async () => {
  cp = await startTestControlPlane({ MERIDIAN_DASHBOARD_SCRAPE_INTERVAL_SECONDS: '0.5' });
  const nobody = `http://127.0.0.1:${await freePort()}`;
  for (const [name, http, index] of [['ap', cp.url, 1], ['eu', cp.url, 2], ['us', nobody, 3]] as const) {
    const answer = await cp.request('POST', '/api/v1/regions', { name, http, grpc: `127.0.0.1:${7000 + index}`, lat: index, lon: index });
    expect(answer.status).toBe(201);
  }
});
afterAll(() => cp?.close());

/** Changes made now at `origin` (so their lag is real), delivered; their ids. */
function push(origin: string, ...bodies: ChangeBody[]): Promise<string[]> {
  return cp.deliver(bodies.map((body) => ({ ...testChange(origin, ++seq, 1000 + seq, body), at: new Date().toISOString() })));
}

const report = (changeId: string, region: string, body: object) => cp.request('POST', `/api/v1/replication/${changeId}/${region}`, body);

async function snapshot(): Promise<DashboardSnapshot> {
  const answer = await cp.request<DashboardSnapshot>('GET', '/api/v1/dashboard');
  expect(answer.status).toBe(200);
  return answer.body;
}

/** Asks for snapshots until `check` passes on one (the collector works in rounds); fails after 20 s. */
async function eventually(check: (snapshot: DashboardSnapshot) => void): Promise<DashboardSnapshot> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const current = await snapshot();
    try {
      check(current);
      return current;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const card = (snapshot: DashboardSnapshot, name: string): RegionCard => snapshot.regions.find((region) => region.name === name)!;

describe('GET /api/v1/dashboard', () => {
  it('has one card per region: down when its gateway does not answer, stale until its relay beats, then healthy', async () => {
    const before = await eventually((s) => {
      expect(card(s, 'eu').health).toBe('stale');
      expect(card(s, 'us').health).toBe('down');
    });
    expect(before.regions.map((region) => region.name)).toEqual(['ap', 'eu', 'us']);
    expect(card(before, 'eu').healthReason).toBe('no heartbeat from its relay yet');
    expect(card(before, 'us').healthReason).toMatch(/^gateway unreachable: ECONNREFUSED/);
    expect(card(before, 'eu').heartbeatAgeSeconds).toBeNull();

    const beating = Date.now();
    expect((await cp.request('POST', '/api/v1/regions/eu/heartbeat')).status).toBe(204);
    const after = await eventually((s) => expect(card(s, 'eu').health).toBe('healthy'));
    expect(card(after, 'eu').healthReason).toBeNull();
    // The heartbeat is no older than the time since it was sent, however slow the machine.
    expect(card(after, 'eu').heartbeatAgeSeconds).toBeLessThanOrEqual((Date.now() - beating) / 1000);
    expect(card(after, 'us').health).toBe('down');
    expect(after.scrapeIntervalSeconds).toBe(0.5);
    expect(after.windowSeconds).toBe(3600);
    expect(card(after, 'eu').figures.replicationBacklog.series).toHaveLength(after.windowSeconds / after.stepSeconds);
  });

  it('counts replications pending and failed per source and target region, with the lag p99 of those applied', async () => {
    const pushing = Date.now();
    const [first, second] = await push(
      'eu',
      { kind: 'manifest.put', repository: 'dash/app', digest: testDigest(1), mediaType: TEST_MANIFEST_TYPE, size: 10, tag: 'v1' },
      { kind: 'manifest.put', repository: 'dash/app', digest: testDigest(2), mediaType: TEST_MANIFEST_TYPE, size: 10, tag: 'v2' },
    );
    const [third] = await push('us', { kind: 'blob.link', repository: 'dash/app', digest: testDigest(3), size: 5 });
    expect((await report(third!, 'ap', { outcome: 'done', attempts: 1 })).status).toBe(204);
    expect((await report(first!, 'ap', { outcome: 'done', attempts: 1 })).status).toBe(204);
    expect((await report(second!, 'ap', { outcome: 'done', attempts: 1 })).status).toBe(204);
    expect((await report(first!, 'us', { outcome: 'failed', error: 'target refused', attempts: 5 })).status).toBe(204);

    const { matrix } = await snapshot();
    expect(matrix.regions).toEqual(['ap', 'eu', 'us']);
    const cell = (source: string, target: string) => matrix.cells.find((entry) => entry.source === source && entry.target === target);
    expect(cell('eu', 'us')).toEqual({ source: 'eu', target: 'us', pending: 1, failed: 1, lagP99Seconds: null });
    expect(cell('eu', 'ap')).toMatchObject({ pending: 0, failed: 0 });
    expect(cell('eu', 'ap')!.lagP99Seconds).toBeGreaterThanOrEqual(0);
    // No lag is longer than the time since the changes were made, however slow the machine.
    expect(cell('eu', 'ap')!.lagP99Seconds).toBeLessThanOrEqual((Date.now() - pushing) / 1000);
    expect(cell('us', 'eu')).toEqual({ source: 'us', target: 'eu', pending: 1, failed: 0, lagP99Seconds: null });
    expect(cell('eu', 'eu')).toBeUndefined();

    // The collector's next round reads each region's backlog.
    await eventually((s) => {
      expect(card(s, 'us').figures.replicationBacklog.current).toBe(1);
      expect(card(s, 'eu').figures.replicationBacklog.current).toBe(1);
      expect(card(s, 'ap').figures.replicationBacklog.current).toBe(0);
      expect(card(s, 'ap').figures.replicationLagP99Seconds.current).toBeGreaterThanOrEqual(0);
    });
  });

  it('lists the newest manifest pushes, newest first, with where each stands in every region', async () => {
    const { pushes } = await snapshot();
    expect(pushes.map((entry) => `${entry.repository}:${entry.tag}`)).toEqual(['dash/app:v2', 'dash/app:v1']);
    const states = (index: number) => Object.fromEntries(pushes[index]!.regions.map((entry) => [entry.name, entry.state]));
    expect(states(0)).toEqual({ ap: 'present', eu: 'present', us: 'pending' });
    expect(states(1)).toEqual({ ap: 'present', eu: 'present', us: 'failed' });
    expect(pushes[1]!.regions.find((entry) => entry.name === 'us')).toMatchObject({ attempts: 5, error: 'target refused' });
    expect(pushes[0]).toMatchObject({ origin: 'eu', digest: testDigest(2) });
  });
});

describe('GET /api/v1/dashboard/events', () => {
  it('streams a snapshot at once and another after every collection round', async () => {
    const response = await fetch(`${cp.url}/api/v1/dashboard/events`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const snapshots = () => (text.match(/^event: snapshot$/gm) ?? []).length;
    // The stream is ended after a deadline, so a missing snapshot fails below rather than hanging.
    const deadline = setTimeout(() => void reader.cancel(), 30_000);
    while (snapshots() < 2) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the event stream ended (or 30 s passed) after ${snapshots()} snapshot(s)`);
      text += value;
    }
    clearTimeout(deadline);
    await reader.cancel();
    const first = /^data: (.*)$/m.exec(text)![1]!;
    expect((JSON.parse(first) as DashboardSnapshot).regions).toHaveLength(3);
  });
});

describe('GET /dashboard', () => {
  it('serves the page, its script and its style, under a policy that lets it load nothing from elsewhere', async () => {
    const page = await fetch(`${cp.url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';/);
    const html = await page.text();
    expect([...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((match) => match[1])).toEqual(['data:,', '/dashboard/assets/app.css', '/dashboard/assets/app.js', '/api/v1/dashboard']);
    const script = await fetch(`${cp.url}/dashboard/assets/app.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await script.text()).toContain('/api/v1/dashboard/events');
    const style = await fetch(`${cp.url}/dashboard/assets/app.css`);
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await style.text()).toContain(':focus-visible');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { CHANGE_LISTENER_APPLICATION_NAME } from '@meridian/metadata';
import { OciTestClient } from '@meridian/testkit';
import { createApp, type Gateway } from './app.js';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

/**
 * Two gateways of one region share a database and a data directory. A tag moved or a manifest
 * deleted through one must stop being served from the other's cache: the change's NOTIFY drops it.
 */
let first: TestGateway;
let second: Gateway;
let secondClient: OciTestClient;

beforeAll(async () => {
  first = await startTestGateway();
  second = await createApp(first.config, pino({ level: 'silent' }));
  secondClient = new OciTestClient(await second.listen());
});
afterAll(async () => {
  await second?.close();
  await first?.close();
});

async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

describe('lookup cache across the gateways of a region', () => {
  it('a tag moved through one gateway is served moved by the other', async () => {
    const v1 = await first.client.pushImage('shared/app', 'stable');
    const url = secondClient.url('manifest', { name: 'shared/app', reference: 'stable' });
    // Warm the second gateway's cache.
    expect((await secondClient.fetch(url, { method: 'HEAD' })).headers.get('docker-content-digest')).toBe(v1.digest);
    const v2 = await first.client.pushImage('shared/app', 'stable');
    const moved = await eventually(async () => (await secondClient.fetch(url, { method: 'HEAD' })).headers.get('docker-content-digest') === v2.digest);
    expect(moved).toBe(true);
  });

  it('a manifest deleted through one gateway is gone from the other, by digest and by tag', async () => {
    const image = await first.client.pushImage('shared/gone', 'v1');
    const byTag = secondClient.url('manifest', { name: 'shared/gone', reference: 'v1' });
    const byDigest = secondClient.url('manifest', { name: 'shared/gone', reference: image.digest });
    expect((await secondClient.fetch(byTag, { method: 'HEAD' })).status).toBe(200);
    expect((await secondClient.fetch(byDigest, { method: 'HEAD' })).status).toBe(200);
    await first.client.fetch(first.client.url('manifest', { name: 'shared/gone', reference: image.digest }), { method: 'DELETE' });
    expect(await eventually(async () => (await secondClient.fetch(byTag, { method: 'HEAD' })).status === 404)).toBe(true);
    expect(await eventually(async () => (await secondClient.fetch(byDigest, { method: 'HEAD' })).status === 404)).toBe(true);
  });

  it('a blob deleted through one gateway is gone from the other', async () => {
    const digest = await first.client.pushBlob('shared/blob', Buffer.from('shared bytes'));
    const url = secondClient.url('blob', { name: 'shared/blob', digest });
    expect((await secondClient.fetch(url, { method: 'HEAD' })).status).toBe(200);
    await first.client.fetch(first.client.url('blob', { name: 'shared/blob', digest }), { method: 'DELETE' });
    expect(await eventually(async () => (await secondClient.fetch(url, { method: 'HEAD' })).status === 404)).toBe(true);
  });

  it('a tag added or deleted through one gateway shows in the other\'s tag list', async () => {
    const image = await first.client.pushImage('shared/list', 'a');
    const list = async () => ((await (await secondClient.fetch(secondClient.url('tags', { name: 'shared/list' }))).json()) as { tags: string[] }).tags;
    expect(await list()).toEqual(['a']); // warms the second gateway's cached list
    await first.client.pushManifest('shared/list', 'b', image.manifestBytes);
    expect(await eventually(async () => (await list()).join() === 'a,b')).toBe(true);
    await first.client.fetch(first.client.url('manifest', { name: 'shared/list', reference: 'a' }), { method: 'DELETE' });
    expect(await eventually(async () => (await list()).join() === 'b')).toBe(true);
  });

  it('after its LISTEN connection is killed, a gateway reconnects and serves changes made meanwhile', async () => {
    const v1 = await first.client.pushImage('shared/reconnect', 'stable');
    const url = secondClient.url('manifest', { name: 'shared/reconnect', reference: 'stable' });
    expect((await secondClient.fetch(url, { method: 'HEAD' })).headers.get('docker-content-digest')).toBe(v1.digest);
    // A real fault: the server ends both gateways' LISTEN sessions.
    const admin = new pg.Client({ connectionString: first.database.url });
    await admin.connect();
    const killed = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
      [CHANGE_LISTENER_APPLICATION_NAME],
    );
    await admin.end();
    expect(killed.rowCount).toBeGreaterThanOrEqual(2);
    const v2 = await first.client.pushImage('shared/reconnect', 'stable');
    expect(await eventually(async () => (await secondClient.fetch(url, { method: 'HEAD' })).headers.get('docker-content-digest') === v2.digest)).toBe(true);
    // And notifications flow again once reconnected: a later move is seen too.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const v3 = await first.client.pushImage('shared/reconnect', 'stable');
    expect(await eventually(async () => (await secondClient.fetch(url, { method: 'HEAD' })).headers.get('docker-content-digest') === v3.digest)).toBe(true);
  });
});

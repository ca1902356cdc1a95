import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetricsScrape, buildImage, createTestDatabase, sha256, startGatewayProcess, type GatewayProcess, type TestDatabase } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

/**
 * The gateway's /metrics (README, "Observability"): Prometheus text a parser accepts, series
 * labelled by route name and never by repository or digest, and counters that move as a client
 * pushes and pulls (distribution-spec v1.1 "Pushing blobs", "Pulling blobs", "Pushing manifests").
 */
let harness: TestGateway;

beforeAll(async () => {
  harness = await startTestGateway({ MERIDIAN_REGION: 'eu-test' });
});
afterAll(async () => {
  await harness?.close();
});

const REPOSITORY = 'metrics/watched-repository';

describe('gateway /metrics', () => {
  it('parses as Prometheus text, with service and region on every series and Node process metrics', async () => {
    await (await harness.client.fetch(harness.client.url('base'))).arrayBuffer();
    const scrape = await MetricsScrape.of(harness.url);
    for (const family of ['meridian_http_requests_total', 'meridian_db_pool_connections', 'meridian_storage_used_bytes', 'nodejs_heap_size_used_bytes']) {
      expect(scrape.samples(family).length, family).toBeGreaterThan(0);
    }
    for (const family of scrape.families.values()) {
      for (const sample of family.metrics) expect(sample.labels, family.name).toMatchObject({ service: 'gateway', region: 'eu-test' });
    }
    expect(scrape.samples('meridian_db_pool_connections').map((sample) => sample.labels?.state).sort()).toEqual(['idle', 'total', 'waiting']);
  });

  it('counts requests by route name, and blob bytes in and out, as a client pushes and pulls', async () => {
    const before = await MetricsScrape.of(harness.url);
    const image = buildImage({ layers: 1, layerSize: 300_000 });
    await harness.client.pushImage(REPOSITORY, 'v1', image);
    const layer = image.layers[0]!;

    // A chunked upload too: POST, PATCH, PUT ("Pushing a blob in chunks").
    const chunked = randomBytes(70_000);
    const session = await harness.client.fetch(harness.client.url('blob-upload', { name: REPOSITORY }), { method: 'POST' });
    expect(session.status).toBe(202);
    const patched = await harness.client.fetch(harness.client.resolve(session.headers.get('location')!), {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: chunked,
    });
    expect(patched.status).toBe(202);
    // A session is counted once it holds bytes: until its first chunk there is nothing of it.
    const during = await MetricsScrape.of(harness.url);
    expect(during.value('meridian_uploads_in_progress')).toBe(before.value('meridian_uploads_in_progress') + 1);
    const closed = await harness.client.fetch(`${harness.client.resolve(patched.headers.get('location')!)}&digest=${sha256(chunked)}`, { method: 'PUT' });
    expect(closed.status).toBe(201);

    const pulled = await harness.client.fetch(harness.client.url('blob', { name: REPOSITORY, digest: layer.digest }));
    expect(Buffer.from(await pulled.arrayBuffer()).equals(layer.bytes)).toBe(true);
    const manifest = await harness.client.fetch(harness.client.url('manifest', { name: REPOSITORY, reference: 'v1' }), { headers: { Accept: image.mediaType } });
    expect(manifest.status).toBe(200);
    await manifest.arrayBuffer();

    const after = await MetricsScrape.of(harness.url);
    const moved = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
    const pushedBytes = image.config.bytes.length + layer.bytes.length + chunked.length;
    expect(moved('meridian_blob_bytes_received_total')).toBe(pushedBytes);
    expect(moved('meridian_blob_bytes_served_total')).toBe(layer.bytes.length);
    expect(moved('meridian_http_requests_total', { route: 'blob-upload', method: 'POST', status: '201' })).toBe(2);
    expect(moved('meridian_http_requests_total', { route: 'blob-upload-session', method: 'PATCH', status: '202' })).toBe(1);
    expect(moved('meridian_http_requests_total', { route: 'manifest', method: 'PUT', status: '201' })).toBe(1);
    expect(moved('meridian_http_requests_total', { route: 'manifest', method: 'GET', status: '200' })).toBe(1);
    expect(moved('meridian_http_requests_total', { route: 'blob', method: 'GET', status: '200' })).toBe(1);
    expect(moved('meridian_http_request_duration_seconds', { route: 'blob', method: 'GET' })).toBe(1);
    expect(after.value('meridian_storage_used_bytes')).toBe(before.value('meridian_storage_used_bytes') + pushedBytes);
    expect(after.value('meridian_uploads_in_progress')).toBe(before.value('meridian_uploads_in_progress'));

    // CONTRIBUTING.md, 'Naming': no repository, tag or digest ever becomes a label.
    const values = after.labelValues();
    expect(values.filter((value) => value.includes('watched-repository') || value.startsWith('sha256:') || value === 'v1')).toEqual([]);
  });

  it('counts requests outside the route table under a few fixed names', async () => {
    const before = await MetricsScrape.of(harness.url);
    await (await harness.client.fetch('/healthz')).arrayBuffer();
    await (await harness.client.fetch(`/nowhere/${randomBytes(4).toString('hex')}`)).arrayBuffer();
    const after = await MetricsScrape.of(harness.url);
    expect(after.value('meridian_http_requests_total', { route: 'healthz', status: '200' }) - before.value('meridian_http_requests_total', { route: 'healthz', status: '200' })).toBe(1);
    expect(after.value('meridian_http_requests_total', { route: 'unmatched', status: '404' }) - before.value('meridian_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
    expect(after.value('meridian_http_requests_total', { route: 'metrics', method: 'GET', status: '200' })).toBeGreaterThan(0);
  });
});

describe('gateway /metrics with auth on', () => {
  const ADMIN_PASSWORD = 'metrics admin password';
  let secured: TestGateway;
  beforeAll(async () => {
    secured = await startTestGateway({ MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD });
  });
  afterAll(async () => {
    await secured?.close();
  });

  // Every pull and push with auth on begins at the token endpoint: counted as `unmatched`, its
  // 200s read as traffic to no route, beside the 404s of scanners that `unmatched` is for.
  it('counts the token endpoint, the audit log and the identity admin API under names of their own, not as unmatched', async () => {
    const admin = { Authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };
    const before = await MetricsScrape.of(secured.url);
    for (const path of ['/oauth2/token?service=meridian&scope=repository:team/app:pull', '/api/v1/audit', '/api/v1/users', '/api/v1/scope-maps']) {
      const answer = await secured.client.fetch(path, { headers: admin });
      expect(answer.status, path).toBe(200);
      await answer.arrayBuffer();
    }
    const after = await MetricsScrape.of(secured.url);
    const moved = (labels: Record<string, string>) => after.value('meridian_http_requests_total', labels) - before.value('meridian_http_requests_total', labels);
    expect(moved({ route: 'token', method: 'GET', status: '200' })).toBe(1);
    expect(moved({ route: 'audit', method: 'GET', status: '200' })).toBe(1);
    expect(moved({ route: 'identity', method: 'GET', status: '200' })).toBe(2);
    expect(moved({ route: 'unmatched', method: 'GET', status: '200' })).toBe(0);
  });
});

describe('gateway /metrics with several worker processes on one port', () => {
  let database: TestDatabase;
  let dataDir: string;
  let gateway: GatewayProcess | undefined;
  beforeAll(async () => {
    database = await createTestDatabase();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-metrics-'));
  });
  afterAll(async () => {
    await gateway?.stop('SIGTERM');
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('answers every scrape with the sum over the workers, whichever worker takes it', { timeout: 180_000 }, async () => {
    gateway = await startGatewayProcess({ databaseUrl: database.url, dataDir, env: { MERIDIAN_WORKERS: '2', NODE_CLUSTER_SCHED_POLICY: 'rr' }, startTimeoutMs: 120_000 });
    // Each push on a connection of its own, which the supervisor hands to its workers in turn
    // (NODE_CLUSTER_SCHED_POLICY=rr: by default the workers accept for themselves, and one of
    // them may take every connection).
    const sizes = [10_000, 20_000, 40_000, 80_000];
    for (const size of sizes) await pushOverNewConnection(gateway.url, 'metrics/cluster', randomBytes(size));
    const pushed = sizes.reduce((sum, size) => sum + size, 0);
    for (let scrape = 0; scrape < 4; scrape++) {
      const seen = await MetricsScrape.of(gateway.url);
      expect(seen.value('meridian_blob_bytes_received_total')).toBe(pushed);
      expect(seen.value('meridian_http_requests_total', { route: 'blob-upload', method: 'POST', status: '201' })).toBe(sizes.length);
      // The same for every worker of the region: the largest, not the sum.
      expect(seen.value('meridian_storage_used_bytes')).toBe(pushed);
    }
  });
});

/** A monolithic blob upload (distribution-spec v1.1 "Pushing a blob monolithically") on a new connection. */
async function pushOverNewConnection(baseUrl: string, repository: string, bytes: Buffer): Promise<void> {
  const url = `${baseUrl}/v2/${repository}/blobs/uploads/?digest=${sha256(bytes)}`;
  const status = await new Promise<number>((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', reject);
    request.end(bytes);
  });
  expect(status).toBe(201);
}

import http from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metadata, createPool } from '@meridian/metadata';
import { createClusterHttp, type RegionRecord, type RegionState } from '@meridian/proto';
import { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import { createTestDatabase, until, type TestDatabase } from '@meridian/testkit';
import { OutboxRelay } from './outbox-relay.js';

/**
 * The outbox relay against a real region database and a control plane that answers over real
 * HTTP what the test sets: the region it lists, and how many times it was asked.
 */

let database: TestDatabase;
let pool: ReturnType<typeof createPool>;
let metadata: Metadata;
let controlPlane: http.Server;
let listed: RegionRecord[] = [];
let listings = 0;

const region = (state: RegionState): RegionRecord => ({ name: 'here', http: 'http://127.0.0.1:1', grpc: '127.0.0.1:1', lat: 0, lon: 0, state, routing: true, heartbeatAt: null, backfill: null });

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ databaseUrl: database.url, max: 2 });
  metadata = new Metadata(pool);
  controlPlane = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/api/v1/regions') {
      listings += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ regions: listed }));
      return;
    }
    res.statusCode = req.url?.endsWith('/heartbeat') ? 204 : 404;
    res.end();
  });
  await new Promise<void>((resolve) => controlPlane.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise((resolve) => controlPlane?.close(resolve));
  await pool?.end();
  await database?.drop();
});

/**
 * Waits until the control plane has been asked for its regions `more` times from now, or the
 * fence opened (the relay then asks no more).
 */
async function listedAgain(more: number): Promise<void> {
  const target = listings + more;
  await until(async () => listings >= target || (await metadata.fence.closedSince()) === undefined, { what: `${more} more readings of the region list` });
}

describe('outbox relay: the fence a purge closed', () => {
  // A purge closes the fence for good (ReplicationFenceStore): only the control plane listing the
  // region as taking replication again, asked after it closed, opens it.
  it('stays closed while the control plane does not list the region or lists it draining, and opens once it is registered again', async () => {
    await metadata.transaction((tx) => tx.fence.close());
    const relay = new OutboxRelay({
      region: 'here',
      controlPlane: new ControlPlaneHttp({ url: `http://127.0.0.1:${(controlPlane.address() as { port: number }).port}`, fetch: createClusterHttp().fetch }),
      databaseUrl: database.url,
      metadata,
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
      heartbeatMs: 20,
      pollMs: 60_000,
    });
    relay.start();
    try {
      listed = [];
      await listedAgain(2);
      expect(await metadata.fence.closedSince()).toBeDefined();
      listed = [region('draining')];
      await listedAgain(2);
      expect(await metadata.fence.closedSince()).toBeDefined();
      listed = [region('adding')];
      await until(async () => (await metadata.fence.closedSince()) === undefined, { what: 'the fence opened' });
    } finally {
      await relay.stop();
    }
  });
});

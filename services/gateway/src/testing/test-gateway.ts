import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createTestDatabase, OciTestClient, type TestDatabase } from '@meridian/testkit';
import { createApp, type Gateway } from '../app.js';
import { loadConfig, type GatewayConfig } from '../config.js';

export interface TestGateway {
  gateway: Gateway;
  client: OciTestClient;
  url: string;
  config: GatewayConfig;
  database: TestDatabase;
  close(): Promise<void>;
}

/**
 * An in-process gateway on a database and data directory of its own, on a free loopback port,
 * for API tests (`*.int.test.ts`). Test support only: production code never imports it.
 */
export async function startTestGateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-test-'));
  const config = loadConfig({ PORT: '0', DATABASE_URL: database.url, MERIDIAN_DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...env });
  const gateway = await createApp(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  const url = await gateway.listen();
  return {
    gateway,
    client: new OciTestClient(url),
    url,
    config,
    database,
    async close() {
      await gateway.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

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
  /** The gateway's log lines (info and up), parsed, when it was started with `captureLogs`. */
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** Keeps the log lines in `logs`, for tests of what an operator is told. */
  captureLogs?: boolean;
}

/**
 * An in-process gateway on a database and data directory of its own, on a free loopback port,
 * for API tests (`*.int.test.ts`), with MERIDIAN_AUTH=off unless `env` sets it. Test support
 * only: production code never imports it.
 */
export async function startTestGateway(env: Record<string, string> = {}, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-test-'));
  // Auth off unless `env` turns it on: these tests speak the OCI API without credentials.
  const config = loadConfig({ PORT: '0', DATABASE_URL: database.url, MERIDIAN_DATA_DIR: dataDir, LOG_LEVEL: 'silent', MERIDIAN_AUTH: 'off', ...env });
  const logs: Array<Record<string, unknown>> = [];
  const logger = options.captureLogs
    ? pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) })
    : pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const gateway = await createApp(config, logger);
  const url = await gateway.listen();
  return {
    gateway,
    client: new OciTestClient(url),
    url,
    config,
    database,
    logs,
    async close() {
      await gateway.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

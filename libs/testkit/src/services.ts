import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { databaseUrl, dropTestDatabase, testDatabaseName, withAdmin, type TestDatabase } from './database.js';

/** The Redis tests use; each test file keeps to keys of its own prefix (testQueuePrefix). */
export const TEST_REDIS_URL = process.env.MERIDIAN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * An empty database of its own for one test file, for a service with a schema of its own (the
 * control plane creates and migrates it). Dropped by `drop()`, or with the run's other databases.
 */
export async function createEmptyTestDatabase(): Promise<TestDatabase> {
  const name = testDatabaseName();
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  return { name, url: databaseUrl(name), drop: () => dropTestDatabase(name) };
}

/** A BullMQ key prefix no other test file uses, so files sharing the machine's Redis never meet. */
export function testQueuePrefix(): string {
  return `meridian-test-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** A TCP port nothing listens on at the moment of asking. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway redis-server on `port` that keeps nothing on disk (no RDB, no AOF), for
 * tests that need a Redis to come and go. Resolves once it accepts connections.
 */
export async function startRedisServer(port: number): Promise<RedisServer> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/Ready to accept connections/.test(output)) {
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', (err) => reject(new Error(`redis-server could not be started (${err.message}); install Redis (see README)`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code} before it was ready:\n${output}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

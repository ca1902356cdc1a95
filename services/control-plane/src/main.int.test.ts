import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyTestDatabase, freePort, testQueuePrefix, until, TEST_CLUSTER_SECRET, TEST_REDIS_URL, type TestDatabase } from '@meridian/testkit';
import { clearQueuePrefix } from './testing/test-control-plane.js';

// The control plane as a process (`node --import tsx services/control-plane/src/main.ts`): it
// prints where it listens and stops cleanly on SIGTERM, whether Redis is there or not, and asks
// for credentials unless told not to. Auth is off (MERIDIAN_AUTH=off) unless a test sets it.

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');
const repoRoot = path.resolve(path.dirname(main), '../../..');
let database: TestDatabase;
const prefix = testQueuePrefix();

beforeAll(async () => {
  database = await createEmptyTestDatabase();
});
afterAll(async () => {
  await clearQueuePrefix(TEST_REDIS_URL, prefix);
  await database?.drop();
});

/** Starts the control plane (auth off unless `env` sets MERIDIAN_AUTH); resolves with the process and its URL once it prints the banner. */
async function start(env: Record<string, string>): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    cwd: repoRoot,
    env: { ...process.env, PORT: '0', MERIDIAN_CLUSTER_SECRET: TEST_CLUSTER_SECRET, CONTROL_PLANE_DATABASE_URL: database.url, MERIDIAN_QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn', MERIDIAN_AUTH: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const match = /control plane listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`control plane exited with ${code}:\n${output}`)));
  });
  return { child, url, output: () => output };
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exited;
  return code as number | null;
}

describe('control plane process', () => {
  it('serves, then stops on SIGTERM with exit 0; MERIDIAN_AUTH=off is warned about in the log and the banner', async () => {
    const { child, url, output } = await start({ REDIS_URL: TEST_REDIS_URL });
    // It listens before its Redis connection is up: /readyz says 503 (redis) until it is.
    await expect.poll(async () => (await fetch(`${url}/readyz`)).status, { timeout: 10_000, interval: 100 }).toBe(200);
    expect(output()).toMatch(/"level":40,[^\n]*"auth":"off"[^\n]*"msg":"MERIDIAN_AUTH=off: NO AUTHENTICATION/);
    expect(output()).toContain('  WARNING: MERIDIAN_AUTH=off: NO AUTHENTICATION');
    expect(await stop(child)).toBe(0);
  });

  it('asks for credentials by default: the administrator\'s password is made into a 0600 file the log names, and never logged', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-control-plane-'));
    try {
      // Empty counts as unset: the default, whatever the environment running the tests says.
      const { child, url, output } = await start({ REDIS_URL: TEST_REDIS_URL, MERIDIAN_AUTH: '', MERIDIAN_ADMIN_PASSWORD: '', MERIDIAN_DATA_DIR: dataDir, LOG_LEVEL: 'info' });
      const passwordFile = path.join(dataDir, 'admin-password');
      expect((await stat(passwordFile)).mode & 0o777).toBe(0o600);
      const password = (await readFile(passwordFile, 'utf8')).trim();
      expect(password.length).toBeGreaterThanOrEqual(12);

      const anonymous = await fetch(`${url}/api/v1/regions`);
      expect(anonymous.status).toBe(401);
      const administrator = await fetch(`${url}/api/v1/regions`, { headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
      expect(administrator.status).toBe(200);

      expect(output()).toContain(`administrator password written to ${passwordFile}`);
      expect(output()).toContain(`sign in as admin with the password in ${passwordFile}`);
      expect(output()).not.toContain('MERIDIAN_AUTH=off');
      expect(output()).not.toContain(password);
      expect(await stop(child)).toBe(0);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('stops on SIGTERM with exit 0 while Redis is unreachable', async () => {
    const { child, url, output } = await start({ REDIS_URL: `redis://127.0.0.1:${await freePort()}`, LOG_LEVEL: 'debug' });
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    // One warning for the outage, however many reconnects fail (the later ones are debug lines).
    await until(() => (output().match(/"msg":"redis still unreachable"/g) ?? []).length >= 2, { intervalMs: 20 });
    expect(output().match(/"msg":"redis unreachable/g)).toHaveLength(1);
    expect(await stop(child)).toBe(0);
  });

  it('refuses a bad variable with one line naming it, exit 1', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', main], { cwd: repoRoot, env: { ...process.env, PORT: 'eighty', MERIDIAN_CLUSTER_SECRET: TEST_CLUSTER_SECRET }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr).toBe('meridian control plane failed to start: invalid configuration: PORT: Invalid input: expected number, received NaN\n');
  });
});

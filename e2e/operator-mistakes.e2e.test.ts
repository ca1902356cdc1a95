import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_POSTGRES_URL, createTestDatabase, gatewayMain, type TestDatabase } from '@meridian/testkit';

/**
 * Each mistake an operator can make when starting Meridian, made for real against the gateway
 * as `pnpm start` runs it: the start stops with status 1 and one line on stderr that names the
 * variable, says what was tried and what to do, carries no stack and no password. Mistakes
 * caught before the supervisor forks are reported once, not once per worker.
 */
const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(gatewayMain), '../../..');
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
const pgServer = new URL(TEST_POSTGRES_URL);
const pgHostPort = `${pgServer.hostname}:${pgServer.port || '5432'}`;
/** A role that only ever logs in with a password; see `requirePassword`. */
const PASSWORD_ROLE = 'meridian_password_probe';
/** TEST-NET-3 (RFC 5737): documentation only, never an address of this machine. */
const FOREIGN_ADDRESS = '203.0.113.77';

const cleanups: Array<() => Promise<unknown>> = [];
let database: TestDatabase;
let scratch: string;
let readOnlyDataDir: string;
let takenPort: number;
let closedPort: number;
let noCreateRole: string;

beforeAll(async () => {
  database = await createTestDatabase();
  cleanups.push(() => database.drop());
  scratch = await mkdtemp(path.join(os.tmpdir(), 'meridian-mistakes-'));
  cleanups.push(() => rm(scratch, { recursive: true, force: true }));

  // Root writes through permission bits, so only a read-only mount refuses it for real. The
  // store folder exists already: the start must try a write, not just a mkdir, to notice.
  readOnlyDataDir = path.join(scratch, 'read-only');
  await mkdir(readOnlyDataDir);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', readOnlyDataDir]);
  cleanups.push(() => run('umount', [readOnlyDataDir]));
  await mkdir(path.join(readOnlyDataDir, 'store'));
  await run('mount', ['-o', 'remount,ro', readOnlyDataDir]);
  await writeFile(path.join(scratch, 'a-file'), '');

  const taken = net.createServer();
  takenPort = await listenOnFreePort(taken);
  cleanups.push(() => new Promise((resolve) => taken.close(resolve)));
  const released = net.createServer();
  closedPort = await listenOnFreePort(released);
  await new Promise((resolve) => released.close(resolve));

  noCreateRole = `${database.name}_nocreate`;
  await withAdmin((admin) => admin.query(`CREATE ROLE "${noCreateRole}" LOGIN NOCREATEDB PASSWORD '${PASSWORD}'`));
  cleanups.push(() => withAdmin((admin) => admin.query(`DROP ROLE IF EXISTS "${noCreateRole}"`)));
  await requirePassword(PASSWORD_ROLE);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  /** It started after all (the mistake went unnoticed); it was stopped again. */
  listened: boolean;
}

/**
 * Starts the gateway as `pnpm start` does, with a working setup but for `env`, and waits for its
 * exit. One at a time: a start costs CPU (loading the gateway under tsx), so on two cores more at
 * once is no quicker, and the suite vitest runs alongside needs room to start its own gateways.
 */
async function startWith(env: Record<string, string>): Promise<Outcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', gatewayMain], {
    cwd: repoRoot,
    env: {
      ...withoutMeridianSettings(process.env),
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      MERIDIAN_DATA_DIR: path.join(scratch, `data-${randomBytes(4).toString('hex')}`),
      MERIDIAN_WORKERS: '2',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let listened = false;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (!listened && /Meridian listening on/.test(stdout)) {
      listened = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
  return { code, stdout, stderr, listened };
}

/** The promise of this suite, for one outcome. */
function expectOneLine(outcome: Outcome, setting: string, mentions: string[], secrets: string[] = []): void {
  expect(outcome.listened, `it started anyway:\n${outcome.stdout}`).toBe(false);
  expect(outcome.code).toBe(1);
  expect(outcome.stderr).toMatch(/^meridian gateway failed to start: [^\n]+\n$/);
  expect(outcome.stderr).not.toMatch(/^\s+at /m);
  expect(outcome.stderr).toContain(setting);
  for (const mention of mentions) expect(outcome.stderr).toContain(mention);
  for (const secret of secrets) expect(outcome.stdout + outcome.stderr).not.toContain(secret);
}

const urlAs = (user: string, password: string, databaseName: string, hostPort = pgHostPort) => `postgres://${user}:${password}@${hostPort}/${databaseName}`;

describe('a mistake at start gives one line on stderr and status 1', { timeout: 120_000 }, () => {
  it('DATABASE_URL where nothing listens names the address tried', async () => {
    const outcome = await startWith({ DATABASE_URL: urlAs('meridian', PASSWORD, 'meridian', `127.0.0.1:${closedPort}`) });
    expectOneLine(outcome, 'DATABASE_URL', [`127.0.0.1:${closedPort}`, 'ECONNREFUSED'], [PASSWORD]);
  });

  it('DATABASE_URL with an unknown user names the user and the server', async () => {
    const user = `meridian_no_such_role_${randomBytes(3).toString('hex')}`;
    const outcome = await startWith({ DATABASE_URL: urlAs(user, PASSWORD, database.name) });
    expectOneLine(outcome, 'DATABASE_URL', [`user "${user}"`, pgHostPort], [PASSWORD]);
  });

  it('DATABASE_URL with a wrong password says the password was refused, and never shows it', async () => {
    const outcome = await startWith({ DATABASE_URL: urlAs(PASSWORD_ROLE, PASSWORD, database.name) });
    expectOneLine(outcome, 'DATABASE_URL', ['refused the password', '28P01', `user "${PASSWORD_ROLE}"`], [PASSWORD]);
  });

  it('DATABASE_URL naming a database its user may not create says so and how to create it', async () => {
    const absent = `${database.name}_absent`;
    const outcome = await startWith({ DATABASE_URL: urlAs(noCreateRole, PASSWORD, absent) });
    expectOneLine(outcome, 'DATABASE_URL', [`database "${absent}"`, `user "${noCreateRole}"`, '42501', 'CREATE DATABASE'], [PASSWORD]);
  });

  it('a malformed DATABASE_URL is refused without showing it', async () => {
    const outcome = await startWith({ DATABASE_URL: `postgres://meridian:${PASSWORD}@127.0.0.1:notaport/meridian` });
    expectOneLine(outcome, 'DATABASE_URL', ['expected a URL like postgres://'], [PASSWORD]);
  });

  it('PORT in use, with a supervisor: one line, not one per worker', async () => {
    const outcome = await startWith({ PORT: String(takenPort) });
    expectOneLine(outcome, 'PORT', [`127.0.0.1:${takenPort}`, 'EADDRINUSE']);
  });

  it('PORT in use, as a single process (MERIDIAN_WORKERS=1)', async () => {
    const outcome = await startWith({ PORT: String(takenPort), MERIDIAN_WORKERS: '1' });
    expectOneLine(outcome, 'PORT', [`127.0.0.1:${takenPort}`, 'EADDRINUSE']);
  });

  it('HOST that is not an address of this machine', async () => {
    expect(Object.values(os.networkInterfaces()).flat().map((entry) => entry?.address)).not.toContain(FOREIGN_ADDRESS);
    const outcome = await startWith({ HOST: FOREIGN_ADDRESS });
    expectOneLine(outcome, 'HOST', [FOREIGN_ADDRESS, 'EADDRNOTAVAIL']);
  });

  it('a bad value of a setting names it, its value and what it takes', async () => {
    const outcome = await startWith({ MERIDIAN_WORKERS: 'lots' });
    expectOneLine(outcome, 'MERIDIAN_WORKERS="lots"', ['expected a whole number from 1 to 64']);
  });

  it('MERIDIAN_UPLOAD_SECRET too short, never showing it', async () => {
    const secret = `short-${randomBytes(4).toString('hex')}`;
    const outcome = await startWith({ MERIDIAN_UPLOAD_SECRET: secret });
    expectOneLine(outcome, 'MERIDIAN_UPLOAD_SECRET', ['at least 32 characters'], [secret]);
  });

  it('MERIDIAN_DATA_DIR on a read-only mount, with MERIDIAN_UPLOAD_SECRET set, so that only a write would tell', async () => {
    const outcome = await startWith({ MERIDIAN_DATA_DIR: readOnlyDataDir, MERIDIAN_UPLOAD_SECRET: randomBytes(32).toString('hex') });
    expectOneLine(outcome, 'MERIDIAN_DATA_DIR', [readOnlyDataDir, 'EROFS']);
  });

  it('MERIDIAN_DATA_DIR below a regular file', async () => {
    const dataDir = path.join(scratch, 'a-file', 'data');
    const outcome = await startWith({ MERIDIAN_DATA_DIR: dataDir, MERIDIAN_UPLOAD_SECRET: randomBytes(32).toString('hex') });
    expectOneLine(outcome, 'MERIDIAN_DATA_DIR', [dataDir, 'ENOTDIR']);
  });

  // The start's write probe passes (the store folder is writable), then making the blob folders
  // (FilesystemDriver.prepare) meets a file where store/blobs should be.
  it('MERIDIAN_DATA_DIR whose store/blobs is a file', async () => {
    const dataDir = path.join(scratch, 'blobs-a-file');
    await mkdir(path.join(dataDir, 'store'), { recursive: true });
    await writeFile(path.join(dataDir, 'store', 'blobs'), 'not a folder');
    const outcome = await startWith({ MERIDIAN_DATA_DIR: dataDir, MERIDIAN_UPLOAD_SECRET: randomBytes(32).toString('hex') });
    expectOneLine(outcome, 'MERIDIAN_DATA_DIR', [dataDir, 'ENOTDIR']);
  });

  it('LOG_LEVEL=debug adds the stack of what went wrong under the line, still without the password', async () => {
    const outcome = await startWith({ DATABASE_URL: urlAs('meridian', PASSWORD, 'meridian', `127.0.0.1:${closedPort}`), LOG_LEVEL: 'debug' });
    expect(outcome.code).toBe(1);
    expect(outcome.stderr.split('\n')[0]).toMatch(/^meridian gateway failed to start: DATABASE_URL: .*ECONNREFUSED/);
    expect(outcome.stderr).toContain('caused by Error: connect ECONNREFUSED');
    expect(outcome.stderr).toMatch(/^\s+at /m);
    expect(outcome.stdout + outcome.stderr).not.toContain(PASSWORD);
  });
});

async function listenOnFreePort(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return (server.address() as net.AddressInfo).port;
}

/** The environment without any setting of the gateway's, so the caller's shell cannot change a case. */
function withoutMeridianSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const settings = /^(MERIDIAN_(?!TEST_)|DATABASE_|PORT$|HOST$|LOG_LEVEL$)/;
  return Object.fromEntries(Object.entries(env).filter(([name]) => !settings.test(name)));
}

async function withAdmin<T>(work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/**
 * Makes the server ask `role` for a password on 127.0.0.1, so a wrong one is refused for real.
 * A fresh Debian cluster already does (scram-sha-256 for every user but postgres, for whom
 * deploy/bootstrap.sh adds trust). A server that trusts everyone on 127.0.0.1 gets one line
 * for this role alone at the top of its pg_hba.conf, which is left there: it touches no other
 * user, and a concurrent run relies on it. The role need not exist: PostgreSQL answers an
 * unknown user with the same password failure (28P01), so as not to tell who exists.
 */
async function requirePassword(role: string): Promise<void> {
  const refused = async () => {
    const client = new pg.Client({ connectionString: urlAs(role, 'wrong', 'postgres') });
    try {
      await client.connect();
      await client.end();
      return false;
    } catch (err) {
      return (err as { code?: string }).code === '28P01';
    }
  };
  if (await refused()) return;
  const line = `host all ${role} 127.0.0.1/32 scram-sha-256`;
  await withAdmin(async (admin) => {
    const hbaFile = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
    const rules = await readFile(hbaFile, 'utf8');
    if (!rules.split('\n').includes(line)) await writeFile(hbaFile, `${line}\n${rules}`);
    await admin.query('SELECT pg_reload_conf()');
  });
  // The reload is a signal to the server: wait until it has read the rules.
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await refused()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`PostgreSQL at ${pgHostPort} still lets ${role} in without a password after pg_hba.conf gained: ${line}`);
}

import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { OciTestClient, TEST_POSTGRES_URL, databaseUrl, sha256, startGatewayProcess, type GatewayProcess } from '@meridian/testkit';

/**
 * What `pnpm start` promises (issue #2, part 5): a gateway creates its database and schema when
 * they are absent, and on SIGTERM it stops taking connections but finishes requests in flight.
 */
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function startOnFreshDatabase(
  env: Record<string, string> = {},
  launcher: 'node' | 'pnpm start' = 'node',
): Promise<{ gateway: GatewayProcess; client: OciTestClient; name: string; dataDir: string }> {
  const name = `meridian_test_${process.env.MERIDIAN_TEST_RUN ?? process.pid}_${randomBytes(4).toString('hex')}`;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'meridian-lifecycle-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  cleanups.push(async () => {
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });
  const gateway = await startGatewayProcess({ databaseUrl: databaseUrl(name), dataDir, env, launcher });
  // Whatever a test finds, nothing it started outlives it (under pnpm, the whole group).
  cleanups.push(() => gateway.stop('SIGKILL'));
  return { gateway, client: new OciTestClient(gateway.url), name, dataDir };
}

/**
 * Opens a session and starts a PATCH that declares a megabyte more than the `sent` bytes it
 * sends, then stalls. Tests send whole MiB: a gateway writing directly (fs-writer.ts) puts its
 * bytes on disk a 1 MiB slice at a time, so only then is "on disk" the same for both write paths.
 */
async function stallChunk(gateway: GatewayProcess, client: OciTestClient, repository: string, sent: number) {
  const start = await client.fetch(client.url('blob-upload', { name: repository }), { method: 'POST' });
  expect(start.status).toBe(202);
  const location = start.headers.get('location')!;
  const url = new URL(location, gateway.url);
  const socket = net.connect(Number(url.port), url.hostname);
  socket.on('error', () => undefined);
  const bytes = randomBytes(sent);
  socket.write(`PATCH ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${sent + MiB}\r\n\r\n`);
  socket.write(bytes);
  return { location, id: start.headers.get('docker-upload-uuid')!, bytes, socket };
}

const MiB = 1024 * 1024;

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 250; attempt++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

const sizeOf = async (file: string) => (await stat(file).catch(() => undefined))?.size;
/** The session's bytes while a request holds it: `data.<holder>` (the store's paths.ts). */
const heldFile = async (session: string) => (await readdir(session).catch(() => [])).find((name) => name.startsWith('data.'));
const heldSize = async (session: string) => {
  const held = await heldFile(session);
  return held === undefined ? undefined : sizeOf(path.join(session, held));
};

describe('gateway lifecycle', () => {
  it('creates its database and schema when absent, then serves pushes', async () => {
    const { client, name } = await startOnFreshDatabase();
    const admin = new pg.Client({ connectionString: databaseUrl(name) });
    await admin.connect();
    const tables = await admin.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`);
    await admin.end();
    expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['repositories', 'blobs', 'manifests', 'tags', 'closed_uploads']));
    const image = await client.pushImage('life/app', 'v1');
    expect(image.response.status).toBe(201);
  });

  it('on SIGTERM finishes an upload in flight, refuses new connections, and exits 0', async () => {
    const { gateway, client } = await startOnFreshDatabase();
    const bytes = randomBytes(2 * 1024 * 1024);
    const digest = sha256(bytes);
    const target = new URL(client.url('blob-upload', { name: 'life/slow' }, { digest }));

    // A monolithic upload sent slowly: half now, the rest after SIGTERM has been delivered.
    const response = new Promise<{ status: number; digest: string | undefined }>((resolve, reject) => {
      const request = http.request(
        { host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: 'POST', headers: { 'Content-Length': bytes.length, 'Content-Type': 'application/octet-stream' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: res.headers['docker-content-digest'] as string | undefined }));
        },
      );
      request.on('error', reject);
      request.write(bytes.subarray(0, bytes.length / 2));
      setTimeout(() => {
        gateway.child.kill('SIGTERM');
        setTimeout(() => request.end(bytes.subarray(bytes.length / 2)), 500);
      }, 300);
    });
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));

    expect(await response).toEqual({ status: 201, digest });
    expect(await exited).toBe(0);
    await expect(fetch(`${gateway.url}/v2/`)).rejects.toThrow();
  });

  // The README's start command is `pnpm start`, and a script or service manager stops it by
  // signalling pnpm. pnpm passes the signal to its script's process only; a shell or a tsx
  // wrapper in between swallowed it, and the gateway went on listening, orphaned.
  it('`pnpm start` stopped with SIGTERM to pnpm itself shuts the gateway down and leaves no process behind', async () => {
    const { gateway: pnpm, client } = await startOnFreshDatabase({ MERIDIAN_WORKERS: '2' }, 'pnpm start');
    const port = Number(new URL(pnpm.url).port);
    const gatewayPids = (await readFile(`/proc/${pnpm.pid}/task/${pnpm.pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
    expect(gatewayPids.length).toBeGreaterThan(0);
    expect((await client.fetch(client.url('base'))).status).toBe(200);

    await pnpm.stop('SIGTERM');
    await until(async () => gatewayPids.every((pid) => !isRunning(pid)), 'every gateway process has exited');
    await until(async () => !(await accepts(port)), 'the port is closed');
  });

  it('a chunk cut short by a crash (SIGKILL) leaves no lock behind that matters: after a restart the client resumes at once ("Pushing a blob in chunks")', async () => {
    const { gateway, client, name, dataDir } = await startOnFreshDatabase({ MERIDIAN_WORKERS: '1' });
    const stalled = await stallChunk(gateway, client, 'life/crash', 2 * MiB);
    const session = path.join(dataDir, 'store', 'uploads', stalled.id);
    await until(async () => (await heldSize(session)) === 2 * MiB, 'the chunk is on disk');
    const held = await heldFile(session);
    expect(await readdir(session)).toEqual([held]);
    await gateway.stop('SIGKILL');
    stalled.socket.destroy();
    // The dead process still holds the session, by name.
    expect(await readdir(session)).toEqual([held]);

    const restarted = await startGatewayProcess({ databaseUrl: databaseUrl(name), dataDir, env: { MERIDIAN_WORKERS: '1' } });
    cleanups.push(() => restarted.stop('SIGKILL'));
    const again = new OciTestClient(restarted.url);
    // The bytes that reached the disk are held, and GET status says so ("Resuming an upload").
    const status = await again.fetch(stalled.location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${2 * MiB - 1}`);
    const rest = randomBytes(10);
    const patch = await again.fetch(stalled.location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${2 * MiB}-${2 * MiB + 9}` }, body: rest as BodyInit });
    expect(patch.status).toBe(202);
    const whole = Buffer.concat([stalled.bytes, rest]);
    const put = await again.fetch(`${patch.headers.get('location')!}&digest=${sha256(whole)}`, { method: 'PUT' });
    expect(put.status).toBe(201);
  });

  it('on SIGTERM, a chunk still stalled when the grace period ends is undone and its session unlocked before the exit', async () => {
    const { gateway, client, dataDir } = await startOnFreshDatabase({ MERIDIAN_WORKERS: '1', MERIDIAN_SHUTDOWN_GRACE_SECONDS: '0.5' });
    const stalled = await stallChunk(gateway, client, 'life/term', 2 * MiB);
    const session = path.join(dataDir, 'store', 'uploads', stalled.id);
    await until(async () => (await heldSize(session)) === 2 * MiB, 'the chunk is on disk');
    expect(await gateway.stop('SIGTERM')).toBe(0);
    stalled.socket.destroy();
    // A first chunk that failed leaves no file at all, and the lock went with it.
    expect(await readdir(session).catch(() => [])).toEqual([]);
  });

  it('with MERIDIAN_WORKERS=2, a worker that dies is replaced and the port keeps answering', async () => {
    const { gateway, client } = await startOnFreshDatabase({ MERIDIAN_WORKERS: '2' });
    const workers = async () => (await readFile(`/proc/${gateway.pid}/task/${gateway.pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
    const before = await workers();
    expect(before).toHaveLength(2);
    process.kill(before[0]!, 'SIGKILL');
    let after: number[] = [];
    for (let attempt = 0; attempt < 100; attempt++) {
      after = await workers();
      if (after.length === 2 && !after.includes(before[0]!)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(after).toHaveLength(2);
    expect(after).not.toContain(before[0]);
    // Every request lands on a live worker (the primary hands connections only to live ones).
    for (let i = 0; i < 10; i++) expect((await fetch(`${gateway.url}/v2/`)).status).toBe(200);
    expect((await client.pushImage('life/replaced', 'v1')).response.status).toBe(201);
    // The crash was dealt with; a clean shutdown afterwards still exits 0.
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
    gateway.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  // Node's HTTP parser mallocs a buffer for every piece of a body; with glibc handing the heap top
  // back after each, a 256 MiB push cost a worker more than twice the CPU (supervisor.ts).
  it('with MERIDIAN_WORKERS=2, the workers start with glibc keeping freed heap', async () => {
    const { gateway } = await startOnFreshDatabase({ MERIDIAN_WORKERS: '2' });
    const workers = (await readFile(`/proc/${gateway.pid}/task/${gateway.pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
    expect(workers).toHaveLength(2);
    for (const pid of workers) {
      const environment = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
      expect(environment).toContain('GLIBC_TUNABLES=glibc.malloc.trim_threshold=67108864');
    }
  });

  it('with MERIDIAN_WORKERS=2, the workers start with a 32 MiB young generation per semi-space', async () => {
    const { gateway } = await startOnFreshDatabase({ MERIDIAN_WORKERS: '2' });
    const workers = (await readFile(`/proc/${gateway.pid}/task/${gateway.pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
    expect(workers).toHaveLength(2);
    for (const pid of workers) {
      const commandLine = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      expect(commandLine).toContain('--max-semi-space-size=32');
    }
  });
});

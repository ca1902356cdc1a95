import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciTestClient, sha256 } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

/**
 * A data directory that refuses writes while the gateway runs, for real: it lives on a tmpfs of
 * its own, remounted read-only, or filled up. Every push then fails with a 5xx carrying an OCI
 * error body from the one error table (distribution-spec v1.1 "Error Codes": UNKNOWN, as
 * Distribution answers a storage failure; 507 for no space), never the 400 of a busy session,
 * and the log names the system's error and the path. Pulls of what is stored go on. /readyz
 * says the blob store fails while it does. (Refusing to start on such a directory is the
 * region set-up's business; this is what happens after.) Needs root, for mount.
 */
const run = promisify(execFile);
let mountPoint: string;
let dataDir: string;
let harness: TestGateway;
let client: OciTestClient;

beforeAll(async () => {
  mountPoint = await mkdtemp(path.join(os.tmpdir(), 'meridian-storage-faults-'));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint]);
  dataDir = path.join(mountPoint, 'data');
  harness = await startTestGateway({ MERIDIAN_DATA_DIR: dataDir }, { captureLogs: true });
  client = harness.client;
});
afterAll(async () => {
  await harness?.close();
  await run('umount', [mountPoint]);
  await rm(mountPoint, { recursive: true, force: true });
});

interface Answer {
  status: number;
  codes: string[];
  message: string;
}

async function answer(response: Response): Promise<Answer> {
  const body = (await response.json()) as { errors: Array<{ code: string; message: string }> };
  return { status: response.status, codes: body.errors.map((e) => e.code), message: body.errors[0]?.message ?? '' };
}

/** The three ways clients push a blob: monolithic POST, POST then PUT, POST then PATCH then PUT. */
async function pushes(name: string, bytes: Buffer): Promise<Record<string, Response>> {
  const digest = sha256(bytes);
  const monolithic = await client.fetch(client.url('blob-upload', { name }, { digest }), { method: 'POST', body: bytes as BodyInit });
  const open = async () => {
    const started = await client.fetch(client.url('blob-upload', { name }), { method: 'POST' });
    expect(started.status).toBe(202);
    return new URL(client.resolve(started.headers.get('location')!));
  };
  const whole = await open();
  whole.searchParams.set('digest', digest);
  const postThenPut = await client.fetch(whole.toString(), { method: 'PUT', body: bytes as BodyInit });
  const chunk = await client.fetch((await open()).toString(), {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${bytes.length - 1}` },
    body: bytes as BodyInit,
  });
  return { monolithic, postThenPut, chunk };
}

async function readyz(): Promise<{ status: number; blobStore: { ok: boolean; error?: string } }> {
  const response = await fetch(`${harness.url}/readyz`);
  const body = (await response.json()) as { checks: { blobStore: { ok: boolean; error?: string } } };
  return { status: response.status, blobStore: body.checks.blobStore };
}

/** Error lines of the log about a failed storage write with `code`. */
function storageErrors(code: string): Array<Record<string, unknown>> {
  return harness.logs.filter((line) => line.level === 50 && line.code === code);
}

describe('a read-only data directory', () => {
  it('answers every push 500 UNKNOWN naming EROFS, logs the cause and the path, keeps serving pulls, and recovers when writable ("Pushing blobs")', async () => {
    const stored = randomBytes(3000);
    const storedDigest = await client.pushBlob('faults/ro', stored);
    await run('mount', ['-o', 'remount,ro', mountPoint]);
    try {
      const bytes = randomBytes(2000);
      for (const [how, response] of Object.entries(await pushes('faults/ro', bytes))) {
        const refused = await answer(response);
        expect(refused, how).toMatchObject({ status: 500, codes: ['UNKNOWN'] });
        expect(refused.message, how).toContain('EROFS (read-only file system)');
        expect(refused.message, how).not.toContain(dataDir);
      }
      const logged = storageErrors('EROFS');
      expect(logged.length).toBeGreaterThanOrEqual(3);
      for (const line of logged) {
        expect(String(line.path)).toMatch(new RegExp(`^${dataDir}/store/`));
        expect(String(line.msg)).toContain(`EROFS at ${dataDir}/store/`);
      }
      expect(await readyz()).toMatchObject({ status: 503, blobStore: { ok: false, error: expect.stringContaining('EROFS') } });
      expect((await fetch(`${harness.url}/healthz`)).status).toBe(200);

      // "Pulling blobs": what is stored is still served.
      const pulled = await client.fetch(client.url('blob', { name: 'faults/ro', digest: storedDigest }));
      expect(pulled.status).toBe(200);
      expect(Buffer.from(await pulled.arrayBuffer()).equals(stored)).toBe(true);
    } finally {
      await run('mount', ['-o', 'remount,rw', mountPoint]);
    }
    expect((await readyz()).status).toBe(200);
    await client.pushBlob('faults/ro', randomBytes(2000));
  });
});

describe('a full data directory', () => {
  it('answers a push 507 UNKNOWN naming ENOSPC and logs the path; /readyz is 503 while full, 200 once there is room ("Pushing blobs")', async () => {
    // More than the filesystem holds: the write itself runs out of room.
    const tooBig = await client.fetch(client.url('blob-upload', { name: 'faults/full' }, { digest: sha256(Buffer.alloc(6 * 2 ** 20, 1)) }), {
      method: 'POST',
      body: Buffer.alloc(6 * 2 ** 20, 1) as BodyInit,
    });
    expect(await answer(tooBig)).toMatchObject({ status: 507, codes: ['UNKNOWN'], message: expect.stringContaining('ENOSPC') });
    expect(storageErrors('ENOSPC')[0]).toMatchObject({ path: expect.stringMatching(new RegExp(`^${dataDir}/store/staging/`)) });
    expect((await readyz()).status).toBe(200);

    // Filled by something else: every push, however small, and the readiness probe find no room.
    const filler = path.join(mountPoint, 'filler');
    await writeFile(filler, Buffer.alloc(6 * 2 ** 20)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOSPC') throw err;
    });
    try {
      expect(await readyz()).toMatchObject({ status: 503, blobStore: { ok: false, error: expect.stringContaining('ENOSPC') } });
      for (const [how, response] of Object.entries(await pushes('faults/full', randomBytes(8192)))) {
        expect(await answer(response), how).toMatchObject({ status: 507, codes: ['UNKNOWN'] });
      }
    } finally {
      await rm(filler);
    }
    expect((await readyz()).status).toBe(200);
    await client.pushBlob('faults/full', randomBytes(8192));
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { readdir, utimes } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import pg from 'pg';
import { BlobUploadUnknownError } from '@meridian/oci';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

let harness: TestGateway;
beforeAll(async () => (harness = await startTestGateway()));
afterAll(async () => harness?.close());

/** The ids of closed sessions the region still remembers, with how long ago each closed. */
async function closedSessions(): Promise<string[]> {
  const client = new pg.Client({ connectionString: harness.database.url });
  await client.connect();
  try {
    return (await client.query<{ id: string }>('SELECT id FROM closed_uploads ORDER BY id')).rows.map((r) => r.id);
  } finally {
    await client.end();
  }
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const octets = { 'Content-Type': 'application/octet-stream' };
const withDigest = (location: string, digest: string) => `${location}&digest=${encodeURIComponent(digest)}`;
const sessionId = (location: string) => new URL(location).pathname.split('/').pop()!;

/** POST: a new session's upload URL. */
async function openSession(name: string): Promise<string> {
  const answer = await harness.client.fetch(harness.client.url('blob-upload', { name }), { method: 'POST' });
  expect(answer.status).toBe(202);
  return harness.client.resolve(answer.headers.get('location')!);
}

async function blobStatus(name: string, digest: string): Promise<number> {
  return (await harness.client.fetch(harness.client.url('blob', { name, digest }), { method: 'HEAD' })).status;
}

async function closedHoursAgo(id: string, hours: number): Promise<void> {
  const client = new pg.Client({ connectionString: harness.database.url });
  await client.connect();
  await client.query(`UPDATE closed_uploads SET closed_at = now() - make_interval(hours => $2) WHERE id = $1`, [id, hours]);
  await client.end();
}

describe('purging upload sessions (Distribution purgeuploads.go)', () => {
  // A closed session is remembered only while a token of it could still be used: no token lasts
  // longer than the region-wide bound of a week (UploadStateSigner), whatever idle limit the
  // gateway that issued it had, so older records serve no one.
  it('forgets sessions closed longer ago than the region-wide bound on the idle limit, and a session closed since stays closed', async () => {
    const uploads = harness.gateway.registry.uploads;
    const bytes = randomBytes(100);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const old = await uploads.start('purge/app');
    await uploads.cancel(old.state);
    const recent = await uploads.start('purge/app');
    await uploads.complete(recent.state, digest, { body: Readable.from([bytes]), options: {} });
    await closedHoursAgo(old.state.id, 170);
    await closedHoursAgo(recent.state.id, 48);

    await uploads.purgeStale(24 * 3600_000);
    expect(await closedSessions()).toEqual([recent.state.id]);
    await expect(uploads.status(recent.state)).rejects.toThrow(BlobUploadUnknownError);
  });

  // A session with no chunk may still be in use: its client is sending the whole blob in the
  // closing PUT right now. Purging must not remove what that PUT writes, whether the body is
  // being written or (a blob already held) only hashed.
  it.each([
    ['new content', false],
    ['content the region already holds', true],
  ])('keeps what the whole-blob PUT of a session is streaming (%s), and the PUT succeeds', async (_label, alreadyHeld) => {
    const uploads = harness.gateway.registry.uploads;
    const bytes = randomBytes(300_000);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (alreadyHeld) {
      const first = await uploads.start('purge/streaming');
      await uploads.complete(first.state, digest, { body: Readable.from([bytes]), options: {} });
    }
    const session = await uploads.start('purge/streaming');
    const body = new PassThrough();
    const completing = uploads.complete(session.state, digest, { body, options: {} });
    body.write(bytes.subarray(0, 100_000));
    const staging = path.join(harness.config.dataDir, 'store', 'staging');
    await vi.waitFor(async () => expect((await readdir(staging).catch(() => [])).length).toBe(1));

    await uploads.purgeStale(24 * 3600_000);

    body.end(bytes.subarray(100_000));
    expect((await completing).digest).toBe(digest);
    expect(await closedSessions()).toContain(session.state.id);
    expect(await readdir(staging)).toEqual([]);
  });
});

// distribution-spec v1.1 "Pushing blobs": a session that has ended is BLOB_UPLOAD_UNKNOWN, and its
// upload URL must never close it, or link its blob, a second time.
describe('an ended session stays ended', () => {
  // A gateway of the region with a shorter MERIDIAN_UPLOAD_MAX_IDLE_HOURS purges too: the record
  // of an ended session is kept for the region-wide bound, whatever the local limit.
  it('a completed session is refused after a purge with a shorter idle limit than the token was issued for', async () => {
    const bytes = randomBytes(1000);
    const location = await openSession('ended/replay');
    expect((await harness.client.fetch(withDigest(location, sha256(bytes)), { method: 'PUT', headers: octets, body: bytes })).status).toBe(201);
    await closedHoursAgo(sessionId(location), 3);
    await harness.gateway.registry.uploads.purgeStale(3600_000);

    expect((await harness.client.fetch(location, { method: 'GET' })).status).toBe(404);
    expect((await harness.client.fetch(location, { method: 'PATCH', headers: octets, body: bytes })).status).toBe(404);
    expect((await harness.client.fetch(withDigest(location, sha256(bytes)), { method: 'PUT' })).status).toBe(404);
  });

  // A client retrying a closing PUT whose answer it did not get (containerd, Go's http client on a
  // reset connection) while the first one's statement has yet to commit.
  it('a retried closing PUT of a chunked session is 404 and the first PUT links the blob', async () => {
    const uploads = harness.gateway.registry.uploads as unknown as { metadata: { uploads: { completeAsBlob(...args: unknown[]): Promise<unknown> } } };
    const store = uploads.metadata.uploads;
    const bytes = randomBytes(5000);
    const patched = await harness.client.fetch(await openSession('ended/retried'), { method: 'PATCH', headers: octets, body: bytes });
    expect(patched.status).toBe(202);
    const location = harness.client.resolve(patched.headers.get('location')!);
    const completeAsBlob = store.completeAsBlob.bind(store);
    let commit!: () => void;
    const committing = new Promise<void>((resolve) => (commit = resolve));
    // A loaded Postgres: the first PUT's statement is slow to commit.
    const slow = vi.spyOn(store, 'completeAsBlob').mockImplementationOnce(async (...args: unknown[]) => {
      await committing;
      return completeAsBlob(...args);
    });
    try {
      const first = harness.client.fetch(withDigest(location, sha256(bytes)), { method: 'PUT' });
      await vi.waitFor(() => expect(slow).toHaveBeenCalledTimes(1));
      const retried = harness.client.fetch(withDigest(location, sha256(bytes)), { method: 'PUT' });
      // The retry is under way (its request has reached the gateway) before the first commits.
      await new Promise((resolve) => setTimeout(resolve, 200));
      commit();
      expect((await first).status).toBe(201);
      expect((await retried).status).toBe(404);
      expect(await blobStatus('ended/retried', sha256(bytes))).toBe(200);
    } finally {
      slow.mockRestore();
    }
  });

  // The first blob of a new repository: the repository is made first, then the close, the blob
  // and its link commit in one statement, so a failure in between leaves the session open.
  it('a closing PUT that fails while making the repository leaves the session open, and its retry links the blob', async () => {
    const uploads = harness.gateway.registry.uploads as unknown as { metadata: { repositories: { ensure(name: string): Promise<number> } } };
    const failing = vi.spyOn(uploads.metadata.repositories, 'ensure').mockRejectedValueOnce(new Error('connection terminated'));
    try {
      const bytes = randomBytes(3000);
      const location = await openSession('ended/brand-new');
      expect((await harness.client.fetch(withDigest(location, sha256(bytes)), { method: 'PUT', headers: octets, body: bytes })).status).toBe(500);
      expect((await harness.client.fetch(withDigest(location, sha256(bytes)), { method: 'PUT', headers: octets, body: bytes })).status).toBe(201);
      expect(await blobStatus('ended/brand-new', sha256(bytes))).toBe(200);
    } finally {
      failing.mockRestore();
    }
  });

  // Distribution's purgeuploads.go: a purged session is unknown, even while its last token is good.
  it('a session whose bytes were purged as abandoned is 404, not open with no bytes', async () => {
    const bytes = randomBytes(2000);
    const patched = await harness.client.fetch(await openSession('ended/purged'), { method: 'PATCH', headers: octets, body: bytes });
    expect(patched.status).toBe(202);
    const location = harness.client.resolve(patched.headers.get('location')!);
    const data = path.join(harness.config.dataDir, 'store', 'uploads', sessionId(location), 'data');
    const dayAgo = new Date(Date.now() - 25 * 3600_000);
    await utimes(data, dayAgo, dayAgo);
    await harness.gateway.registry.uploads.purgeStale(24 * 3600_000);

    expect((await harness.client.fetch(location, { method: 'GET' })).status).toBe(404);
    expect((await harness.client.fetch(withDigest(location, sha256(bytes)), { method: 'PUT' })).status).toBe(404);
  });
});

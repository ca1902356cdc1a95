import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
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

async function closedHoursAgo(id: string, hours: number): Promise<void> {
  const client = new pg.Client({ connectionString: harness.database.url });
  await client.connect();
  await client.query(`UPDATE closed_uploads SET closed_at = now() - make_interval(hours => $2) WHERE id = $1`, [id, hours]);
  await client.end();
}

describe('purging upload sessions (Distribution purgeuploads.go)', () => {
  // A closed session is remembered only while a token of it could still be used: a token idle
  // past the limit is refused on its own (UploadStateSigner), so older records serve no one.
  it('forgets sessions closed longer ago than the idle limit, and a session closed since stays closed', async () => {
    const uploads = harness.gateway.registry.uploads;
    const bytes = randomBytes(100);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const old = await uploads.start('purge/app');
    await uploads.cancel(old.state);
    const recent = await uploads.start('purge/app');
    await uploads.complete(recent.state, digest, { body: Readable.from([bytes]), options: {} });
    await closedHoursAgo(old.state.id, 48);

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

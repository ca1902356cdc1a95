import { createHash, randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

let harness: TestGateway;
beforeAll(async () => (harness = await startTestGateway()));
afterAll(async () => harness?.close());

async function sessionRows(): Promise<string[]> {
  const client = new pg.Client({ connectionString: harness.database.url });
  await client.connect();
  try {
    return (await client.query<{ id: string }>('SELECT id FROM uploads ORDER BY id')).rows.map((r) => r.id);
  } finally {
    await client.end();
  }
}

async function age(id: string, hours: number): Promise<void> {
  const client = new pg.Client({ connectionString: harness.database.url });
  await client.connect();
  await client.query(`UPDATE uploads SET started_at = now() - make_interval(hours => $2) WHERE id = $1`, [id, hours]);
  await client.end();
}

describe('purging upload sessions (Distribution purgeuploads.go)', () => {
  it('removes rows of old sessions whose bytes are gone, keeps old sessions still alive and new ones', async () => {
    const uploads = harness.gateway.registry.uploads;
    const gone = await uploads.start('purge/app');
    const aliveOld = await uploads.start('purge/app');
    const fresh = await uploads.start('purge/app');
    const neverUsed = await uploads.start('purge/app');
    await uploads.append(gone.state, Readable.from([Buffer.from('old bytes')]), {});
    await uploads.append(aliveOld.state, Readable.from([Buffer.from('bytes still arriving')]), {});
    for (const session of [gone, aliveOld, neverUsed]) await age(session.state.id, 48);
    // The old session's bytes were removed (a crash, an earlier purge): only its row remains.
    await rm(path.join(harness.config.dataDir, 'store', 'uploads', gone.state.id), { recursive: true, force: true });

    await uploads.purgeStale(24 * 3600_000);
    // An old session that never had a chunk has been idle since it started: it goes too.
    expect(await sessionRows()).toEqual([aliveOld.state.id, fresh.state.id].sort());
  });

  // An old session with no chunk may still be in use: its client is sending the whole blob in
  // the closing PUT right now. Purging must not close it under that PUT, whether the body is
  // being written or (a blob already held) only hashed.
  it.each([
    ['new content', false],
    ['content the region already holds', true],
  ])('keeps an old session whose whole-blob PUT is streaming (%s), and the PUT succeeds', async (_label, alreadyHeld) => {
    const uploads = harness.gateway.registry.uploads;
    const bytes = randomBytes(300_000);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (alreadyHeld) {
      const first = await uploads.start('purge/streaming');
      await uploads.complete(first.state, digest, { body: Readable.from([bytes]), options: {} });
    }
    const session = await uploads.start('purge/streaming');
    await age(session.state.id, 48);
    const body = new PassThrough();
    const completing = uploads.complete(session.state, digest, { body, options: {} });
    body.write(bytes.subarray(0, 100_000));
    const staging = path.join(harness.config.dataDir, 'store', 'staging');
    await vi.waitFor(async () => expect((await readdir(staging)).some((name) => name.startsWith(session.state.id))).toBe(true));

    await uploads.purgeStale(24 * 3600_000);
    expect(await sessionRows()).toContain(session.state.id);

    body.end(bytes.subarray(100_000));
    expect((await completing).digest).toBe(digest);
    expect(await sessionRows()).not.toContain(session.state.id);
    expect((await readdir(staging)).filter((name) => name.startsWith(session.state.id))).toEqual([]);
  });
});

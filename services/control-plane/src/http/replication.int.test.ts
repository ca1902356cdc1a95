import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeBody } from '@meridian/proto';
import { startTestControlPlane, testChange, testRegion, type TestControlPlane, TEST_MANIFEST_TYPE, testDigest } from '../testing/test-control-plane.js';

// /api/v1/replication: the worker's outcome reports, and where content stands in each region.

let cp: TestControlPlane;
const MANIFEST = TEST_MANIFEST_TYPE;
const digest = testDigest;
let seq = 0;

beforeAll(async () => {
  cp = await startTestControlPlane();
  for (const [index, name] of ['eu', 'us', 'ap'].entries()) await cp.request('POST', '/api/v1/regions', testRegion(name, index + 1));
});
afterAll(() => cp?.close());

async function push(origin: string, hlc: number, body: ChangeBody): Promise<string> {
  const [id] = await cp.deliver([testChange(origin, ++seq, hlc, body)]);
  return id!;
}

const report = (changeId: string, region: string, body: object) => cp.request('POST', `/api/v1/replication/${changeId}/${region}`, body);
const status = (query: string) => cp.request('GET', `/api/v1/replication/status?${query}`);
const states = (body: { regions: { name: string; state: string }[] }) => Object.fromEntries(body.regions.map((entry) => [entry.name, entry.state]));

describe('POST /api/v1/replication/:changeId/:region', () => {
  it('records outcomes; a done row stays done whatever comes after it', async () => {
    const id = await push('eu', 100, { kind: 'blob.link', repository: 'report/app', digest: digest(1), size: 5 });
    expect((await report(id, 'us', { outcome: 'done', bytes: 5, attempts: 2 })).status).toBe(204);
    expect((await report(id, 'us', { outcome: 'failed', error: 'late duplicate' })).status).toBe(204);
    const { rows } = await cp.controlPlane.pool.query('SELECT state, bytes, attempts, last_error, done_at IS NOT NULL AS done FROM replications WHERE change_id = $1 AND region = $2', [
      id,
      'us',
    ]);
    expect(rows[0]).toEqual({ state: 'done', bytes: '5', attempts: 2, last_error: null, done: true });
  });

  it('keeps a row pending when it is reported dropped while its region still takes work', async () => {
    const id = await push('eu', 102, { kind: 'blob.link', repository: 'report/app', digest: digest(3), size: 5 });
    expect((await report(id, 'us', { outcome: 'dropped' })).status).toBe(204);
    const { rows } = await cp.controlPlane.pool.query('SELECT state FROM replications WHERE change_id = $1 AND region = $2', [id, 'us']);
    expect(rows[0]).toEqual({ state: 'pending' });
  });

  it('answers 404 for a pair it never planned and 400 for a bad report', async () => {
    const id = await push('eu', 101, { kind: 'blob.link', repository: 'report/app', digest: digest(2), size: 5 });
    expect((await report(id, 'eu', { outcome: 'done' })).body.error.code).toBe('REPLICATION_UNKNOWN');
    expect((await report('999999', 'us', { outcome: 'done' })).status).toBe(404);
    const bad = await report(id, 'us', { outcome: 'finished' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^invalid request body: outcome: /);
    expect((await report('0', 'us', { outcome: 'done' })).body.error.message).toMatch(/^invalid request path: changeId/);
  });
});

describe('GET /api/v1/replication/status', () => {
  it('gives each region present, pending, failed or absent for a tag, the origin counting as present', async () => {
    const put = await push('eu', 200, { kind: 'manifest.put', repository: 'status/app', digest: digest(10), mediaType: MANIFEST, size: 10, tag: 'v1' });
    let answer = await status('repository=status/app&reference=v1');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ repository: 'status/app', reference: 'v1', tag: 'v1', digest: digest(10) });
    expect(states(answer.body)).toEqual({ ap: 'pending', eu: 'present', us: 'pending' });

    await report(put, 'us', { outcome: 'done' });
    await report(put, 'ap', { outcome: 'failed', error: 'UNAVAILABLE: ap unreachable', attempts: 12 });
    answer = await status('repository=status/app&reference=v1');
    expect(states(answer.body)).toEqual({ ap: 'failed', eu: 'present', us: 'present' });
    expect(answer.body.regions.find((entry: { name: string }) => entry.name === 'ap')).toMatchObject({ error: 'UNAVAILABLE: ap unreachable', attempts: 12 });

    // A region added later has the tag through its backfill; a region being removed is left out.
    await cp.request('POST', '/api/v1/regions', testRegion('sa', 4));
    await cp.request('DELETE', '/api/v1/regions/us');
    answer = await status('repository=status/app&reference=v1');
    expect(states(answer.body)).toEqual({ ap: 'failed', eu: 'present', sa: 'pending' });
    // A write the worker found superseded was never applied there.
    await report(put, 'sa', { outcome: 'superseded' });
    answer = await status('repository=status/app&reference=v1');
    expect(answer.body.regions.find((entry: { name: string }) => entry.name === 'sa')).toEqual({ name: 'sa', state: 'absent', updatedAt: null });
    await cp.request('POST', '/api/v1/regions', testRegion('us', 2));
  });

  it('answers for a digest from the puts since its last delete, and for every tag when no reference is given', async () => {
    const first = await push('eu', 300, { kind: 'manifest.put', repository: 'status/img', digest: digest(20), mediaType: MANIFEST, size: 20, tag: 'a' });
    await report(first, 'us', { outcome: 'done' });
    await push('eu', 301, { kind: 'manifest.delete', repository: 'status/img', digest: digest(20) });
    // Pushed again, from another region: where the first put was applied no longer counts.
    await push('ap', 302, { kind: 'manifest.put', repository: 'status/img', digest: digest(20), mediaType: MANIFEST, size: 20, tag: 'b' });
    const byDigest = await status(`repository=status/img&reference=${digest(20)}`);
    expect(byDigest.body).toMatchObject({ tag: null, digest: digest(20) });
    expect(states(byDigest.body)).toMatchObject({ ap: 'present', eu: 'pending', us: 'pending' });

    const all = await status('repository=status/img');
    expect(all.status).toBe(200);
    expect(all.body.tags.map((entry: { tag: string; digest: string }) => [entry.tag, entry.digest])).toEqual([['b', digest(20)]]);
    expect(states(all.body.tags[0])).toMatchObject({ ap: 'present', eu: 'pending' });
  });

  it('answers 404 naming what the catalog lacks, and 400 without a repository', async () => {
    const missing = await status('repository=status/app&reference=nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'REFERENCE_UNKNOWN', message: 'the catalog holds no tag nope in repository status/app' });
    expect((await status(`repository=status/app&reference=${digest(99)}`)).body.error.message).toMatch(/no manifest sha256:/);
    expect((await status('reference=v1')).status).toBe(400);
  });
});

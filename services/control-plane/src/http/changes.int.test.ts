import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicateJobId, type ReplicatedChange } from '@meridian/proto';
import { everyOrder } from '@meridian/testkit';
import { startTestControlPlane, testChange, testRegion, type TestControlPlane, TEST_MANIFEST_TYPE, testDigest } from '../testing/test-control-plane.js';

// POST /api/v1/changes: what each region's outbox relay delivers (at least once, in seq order).

let cp: TestControlPlane;
const MANIFEST = TEST_MANIFEST_TYPE;
const digest = testDigest;

beforeAll(async () => {
  cp = await startTestControlPlane();
  for (const [index, name] of ['eu', 'us', 'ap'].entries()) {
    expect((await cp.request('POST', '/api/v1/regions', testRegion(name, index + 1))).status).toBe(201);
  }
});
afterAll(() => cp?.close());

async function post(origin: string, changes: ReplicatedChange[]) {
  const { status, body } = await cp.request('POST', '/api/v1/changes', { origin, changes });
  return { status, body };
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await cp.controlPlane.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${sql}`, params);
  return Number(rows[0]!.n);
}

describe('POST /api/v1/changes', () => {
  it('stores a batch once: delivered again, it stores, plans and queues nothing new, and acknowledges the same seq', async () => {
    const batch = [
      testChange('eu', 1, 1000, { kind: 'blob.link', repository: 'once/app', digest: digest(1), size: 10 }),
      testChange('eu', 2, 1001, { kind: 'manifest.put', repository: 'once/app', digest: digest(2), mediaType: MANIFEST, size: 20, tag: 'v1' }),
    ];
    const first = await post('eu', batch);
    expect(first).toEqual({ status: 200, body: { acknowledged: '2', stored: 2 } });
    const rowsAfterFirst = await count('replications');
    const jobsAfterFirst = await cp.jobs.getJobCountByTypes('waiting', 'prioritized', 'delayed', 'active');

    const again = await post('eu', batch);
    expect(again).toEqual({ status: 200, body: { acknowledged: '2', stored: 0 } });
    expect(await count(`changes WHERE repository = 'once/app'`)).toBe(2);
    expect(await count('replications')).toBe(rowsAfterFirst);
    expect(await cp.jobs.getJobCountByTypes('waiting', 'prioritized', 'delayed', 'active')).toBe(jobsAfterFirst);

    // An empty batch (a relay asking where it stands) acknowledges the last seq stored.
    expect((await post('eu', [])).body).toEqual({ acknowledged: '2', stored: 0 });
  });

  it('applies a batch in seq order whatever order its array has: a put then a delete leaves the manifest deleted', async () => {
    const put = testChange('eu', 11, 2000, { kind: 'manifest.put', repository: 'order/app', digest: digest(3), mediaType: MANIFEST, size: 30, tag: 'v1' });
    const remove = testChange('eu', 12, 2001, { kind: 'manifest.delete', repository: 'order/app', digest: digest(3) });
    expect((await post('eu', [remove, put])).body).toEqual({ acknowledged: '12', stored: 2 });

    const { rows } = await cp.controlPlane.pool.query<{ seq: string }>(`SELECT seq FROM changes WHERE repository = 'order/app' ORDER BY id`);
    expect(rows.map((row) => row.seq)).toEqual(['11', '12']);
    // Had the delete been applied first, the late put (older clock) would have left the tag
    // live, pointing at a deleted manifest.
    expect((await cp.request('GET', '/api/v1/replication/status?repository=order/app&reference=v1')).status).toBe(404);
    expect((await cp.request('GET', `/api/v1/replication/status?repository=order/app&reference=${digest(3)}`)).status).toBe(404);
  });

  it('plans one replication per region taking work, never the origin nor a draining region, and queues each under its deterministic job id', async () => {
    expect((await cp.request('POST', '/api/v1/regions', testRegion('drained', 9))).status).toBe(201);
    expect((await cp.request('DELETE', '/api/v1/regions/drained')).status).toBe(202);

    const change = testChange('us', 1, 3000, { kind: 'manifest.put', repository: 'plan/app', digest: digest(4), mediaType: MANIFEST, size: 40, tag: 'v1' });
    expect((await post('us', [change])).status).toBe(200);
    const { rows } = await cp.controlPlane.pool.query<{ id: string }>(`SELECT id FROM changes WHERE origin = 'us' AND seq = 1`);
    const changeId = rows[0]!.id;
    const { rows: planned } = await cp.controlPlane.pool.query<{ region: string; state: string; backfill: boolean }>(
      'SELECT region, state, backfill FROM replications WHERE change_id = $1 ORDER BY region',
      [changeId],
    );
    expect(planned).toEqual([
      { region: 'ap', state: 'pending', backfill: false },
      { region: 'eu', state: 'pending', backfill: false },
    ]);

    for (const region of ['ap', 'eu']) {
      const job = await cp.jobs.getJob(replicateJobId(changeId, region));
      expect(job?.name).toBe('replicate');
      expect(job?.id).toBe(`replicate-${changeId}-${region}`);
      expect(job?.data).toEqual({ changeId, region, change });
      expect(job?.opts.attempts).toBe(12);
    }
    expect(await cp.jobs.getJob(replicateJobId(changeId, 'us'))).toBeUndefined();
    expect(await cp.jobs.getJob(replicateJobId(changeId, 'drained'))).toBeUndefined();

    const stored = await cp.request('GET', `/api/v1/changes/${changeId}`);
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ id: changeId, ...change });
  });

  it('answers 404 for a change it does not have', async () => {
    expect((await cp.request('GET', '/api/v1/changes/999999')).body.error.code).toBe('CHANGE_UNKNOWN');
    expect((await cp.request('GET', '/api/v1/changes/abc')).status).toBe(404);
  });

  it('refuses a bad batch with a 400 naming the field, and stores none of it', async () => {
    const good = testChange('eu', 21, 4000, { kind: 'tag.delete', repository: 'bad/app', tag: 'v1' });
    const stray = await post('eu', [good, testChange('us', 22, 4001, { kind: 'tag.delete', repository: 'bad/app', tag: 'v2' })]);
    expect(stray.status).toBe(400);
    expect(stray.body.error.message).toMatch(/changes\.1\.origin/);

    const huge = await post('eu', [{ ...good, hlc: '99999999999999999999' }]);
    expect(huge.status).toBe(400);
    expect(huge.body.error.message).toMatch(/changes\.0\.hlc/);

    const kind = await post('eu', [{ ...good, body: { kind: 'blob.copy', repository: 'bad/app' } } as never]);
    expect(kind.status).toBe(400);
    expect(kind.body.error.message).toMatch(/^invalid request body: changes\.0\.body/);

    const response = await fetch(`${cp.url}/api/v1/changes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"origin":' });
    expect(response.status).toBe(400);
    expect((await response.json()).error).toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringMatching(/not JSON/) });

    expect(await count(`changes WHERE repository = 'bad/app'`)).toBe(0);
  });
});

describe('the merged catalog: last writer wins by (hlc, origin)', () => {
  // Two regions write one tag; each repository sees the two writes arrive in another order.
  const write = (origin: string, seq: number, hlc: number, repository: string, n: number) =>
    testChange(origin, seq, hlc, { kind: 'manifest.put', repository, digest: digest(n), mediaType: MANIFEST, size: n, tag: 'latest' });

  async function tagDigest(repository: string): Promise<string> {
    const response = await cp.request('GET', `/api/v1/replication/status?repository=${repository}&reference=latest`);
    expect(response.status).toBe(200);
    return response.body.digest;
  }

  /** Delivers `first`, then `second`; returns the digest the tag names afterwards. */
  async function winnerAfter(repository: string, first: ReplicatedChange, second: ReplicatedChange): Promise<string> {
    await post(first.origin, [first]);
    await post(second.origin, [second]);
    return tagDigest(repository);
  }

  it('the newer clock wins whichever write arrives first', async () => {
    expect(await winnerAfter('lww/a', write('eu', 101, 5000, 'lww/a', 51), write('us', 101, 6000, 'lww/a', 52))).toBe(digest(52));
    expect(await winnerAfter('lww/b', write('us', 102, 6000, 'lww/b', 62), write('eu', 102, 5000, 'lww/b', 61))).toBe(digest(62));
  });

  it('equal clocks are ordered by region name, as compareClocks orders them', async () => {
    expect(await winnerAfter('lww/c', write('us', 103, 7000, 'lww/c', 72), write('eu', 103, 7000, 'lww/c', 71))).toBe(digest(72));
    expect(await winnerAfter('lww/d', write('eu', 104, 7000, 'lww/d', 81), write('us', 104, 7000, 'lww/d', 82))).toBe(digest(82));
  });

  it('a tag written with a manifest that a newer delete (arrived first) removed stays unwritten, as in the regions', async () => {
    await post('us', [testChange('us', 107, 9001, { kind: 'manifest.delete', repository: 'lww/f', digest: digest(95) })]);
    await post('eu', [write('eu', 107, 9000, 'lww/f', 95)]);
    expect((await cp.request('GET', '/api/v1/replication/status?repository=lww/f&reference=latest')).status).toBe(404);
    expect((await cp.request('GET', `/api/v1/replication/status?repository=lww/f&reference=${digest(95)}`)).status).toBe(404);
  });

  // review2 finding 2: the manifest delete stamped the tags naming it with its own clock, so a
  // move of the tag older than the delete but newer than the tag's write lost when it came second.
  it('a tag moved to another manifest before the old one was deleted names the new one, whichever arrives first', async () => {
    const first = (repository: string, seq: number) => write('eu', seq, 10_000, repository, 111);
    const moved = (repository: string, seq: number) => write('us', seq, 15_000, repository, 112);
    const deleted = (repository: string, seq: number) =>
      testChange('eu', seq, 20_000, { kind: 'manifest.delete', repository, digest: digest(111) });
    await post('eu', [first('lww/g', 110)]);
    await post('eu', [deleted('lww/g', 111)]);
    await post('us', [moved('lww/g', 110)]);
    await post('eu', [first('lww/h', 112)]);
    await post('us', [moved('lww/h', 111)]);
    await post('eu', [deleted('lww/h', 113)]);
    expect(await tagDigest('lww/g')).toBe(digest(112));
    expect(await tagDigest('lww/h')).toBe(digest(112));
  });


  let seq = 1000;
  const change = (origin: string, hlc: number, body: ReplicatedChange['body']) => testChange(origin, seq++, hlc, body);

  /**
   * Delivers `before`, then `changes` in every order, each order to a repository of its own
   * (`changes` makes them for a repository); returns, for each order, whether each of `references`
   * is live in the catalog and what it names.
   */
  async function catalogInEveryOrder(
    prefix: string,
    before: (repository: string) => ReplicatedChange[],
    changes: (repository: string) => ReplicatedChange[],
    references: readonly string[],
  ): Promise<Array<{ order: string; live: Record<string, string | null> }>> {
    const seen = [];
    for (const [i, order] of everyOrder(changes(prefix).map((_, index) => index)).entries()) {
      const repository = `${prefix}-${i}`;
      for (const each of before(repository)) await post(each.origin, [each]);
      const made = changes(repository);
      for (const index of order) await post(made[index]!.origin, [made[index]!]);
      const live: Record<string, string | null> = {};
      for (const reference of references) {
        const response = await cp.request('GET', `/api/v1/replication/status?repository=${repository}&reference=${reference}`);
        live[reference] = response.status === 200 ? response.body.digest : null;
      }
      seen.push({ order: order.map((index) => `${made[index]!.body.kind}@${made[index]!.hlc}`).join(', '), live });
    }
    return seen;
  }

  const put = (origin: string, hlc: number, repository: string, n: number, tag?: string) =>
    change(origin, hlc, { kind: 'manifest.put', repository, digest: digest(n), mediaType: MANIFEST, size: n, ...(tag ? { tag } : {}) });

  // In clock order: T0 -> M1 at 15, M1 deleted at 20 (taking T0), M1 pushed again by T at 25. The
  // push made the catalog's row of M1 live again, and T0 at 15 arriving after it must still meet
  // the delete at 20.
  it('a tag write older than a manifest delete stays lost though a newer push brought the manifest back, in every order', async () => {
    const seen = await catalogInEveryOrder(
      'lww/revive',
      (repository) => [put('eu', 10_000, repository, 121)],
      (repository) => [
        put('ap', 15_000, repository, 121, 'T0'),
        change('eu', 20_000, { kind: 'manifest.delete', repository, digest: digest(121) }),
        put('us', 25_000, repository, 121, 'T'),
      ],
      ['T0', 'T', digest(121)],
    );
    expect(seen).toEqual(seen.map(({ order }) => ({ order, live: { T0: null, T: digest(121), [digest(121)]: digest(121) } })));
  });

  // In clock order: T -> M2 at 5, T -> M1 at 10, M1 deleted at 20 (taking T): the move to M1
  // overwrote T -> M2, so T stays deleted in every order.
  it('a tag a manifest delete took is not brought back by an older write naming another manifest, in every order', async () => {
    const seen = await catalogInEveryOrder(
      'lww/moved',
      () => [],
      (repository) => [
        put('us', 5_000, repository, 122, 'latest'),
        put('eu', 10_000, repository, 123, 'latest'),
        change('ap', 20_000, { kind: 'manifest.delete', repository, digest: digest(123) }),
      ],
      ['latest', digest(122), digest(123)],
    );
    expect(seen).toEqual(seen.map(({ order }) => ({ order, live: { latest: null, [digest(122)]: digest(122), [digest(123)]: null } })));
  });

  it('a tag delete older than the write it meets loses to it; a newer one removes the tag', async () => {
    await post('eu', [write('eu', 105, 8000, 'lww/e', 91)]);
    await post('us', [testChange('us', 105, 7999, { kind: 'tag.delete', repository: 'lww/e', tag: 'latest' })]);
    expect(await tagDigest('lww/e')).toBe(digest(91));
    await post('us', [testChange('us', 106, 8001, { kind: 'tag.delete', repository: 'lww/e', tag: 'latest' })]);
    expect((await cp.request('GET', '/api/v1/replication/status?repository=lww/e&reference=latest')).status).toBe(404);
  });
});

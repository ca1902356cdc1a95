import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@meridian/testkit';
import { runMeridian, type MeridianRun } from './run-meridian.js';
import { FakeReplicaRegion } from '@meridian/testkit/fake-replica-region';
import { startTestControlPlane, testChange, testDigest, testRegion, TEST_MANIFEST_TYPE, type TestControlPlane } from '@meridian/control-plane/testing';

// The `meridian` command line, run as a process (as `pnpm meridian` runs it) against a real
// control plane.

let cp: TestControlPlane;
let folder: string;

beforeAll(async () => {
  cp = await startTestControlPlane();
  folder = await mkdtemp(path.join(os.tmpdir(), 'meridian-cli-'));
});
afterAll(async () => {
  await cp?.close();
  if (folder) await rm(folder, { recursive: true, force: true });
});

type Run = MeridianRun;

/**
 * Runs `meridian ...args` as `pnpm meridian` does: from the checkout's root, with INIT_CWD naming
 * the folder the user is in (`cwd`, a scratch folder by default), with only the given
 * MERIDIAN_SERVER (null: none) and no MERIDIAN_ADMIN_PASSWORD unless `env` gives one.
 */
function meridian(args: string[], options: { server?: string | null; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, INIT_CWD: options.cwd ?? folder, MERIDIAN_ADMIN_PASSWORD: '', ...options.env };
  delete env.MERIDIAN_SERVER;
  const server = options.server === undefined ? cp.url : options.server;
  if (server !== null) env.MERIDIAN_SERVER = server;
  return runMeridian(args, env);
}

describe('meridian region', () => {
  it('add registers a region and says so; --json prints the control plane\'s answer', async () => {
    const added = await meridian(['region', 'add', 'eu', '--http', 'http://127.0.0.1:5011', '--grpc', '127.0.0.1:7011', '--lat', '50.1', '--lon', '8.7']);
    expect(added).toEqual({ code: 0, stdout: 'region eu registered, state active\n', stderr: '' });

    await cp.deliver([testChange('eu', 1, 1000, { kind: 'manifest.put', repository: 'team/app', digest: testDigest(1), mediaType: TEST_MANIFEST_TYPE, size: 1, tag: 'v1' })]);
    const json = await meridian(['--json', 'region', 'add', 'us', '--http', 'http://127.0.0.1:5021', '--grpc', '127.0.0.1:7021', '--lat', '40', '--lon', '-74']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      name: 'us',
      http: 'http://127.0.0.1:5021',
      grpc: '127.0.0.1:7021',
      lat: 40,
      lon: -74,
      state: 'adding',
      routing: true,
      heartbeatAt: null,
      backfill: { done: 0, failed: 0, total: 1, bytes: 0, etaSeconds: null },
    });
  });

  it('list prints a table: name, state, endpoints, heartbeat age, backfill progress', async () => {
    await cp.request('POST', '/api/v1/regions/eu/heartbeat');
    const list = await meridian(['region', 'list']);
    expect(list.code).toBe(0);
    const [header, eu, us] = list.stdout.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['NAME', 'STATE', 'HTTP', 'GRPC', 'HEARTBEAT', 'BACKFILL']);
    expect(eu!.split(/\s{2,}/)).toEqual(['eu', 'active', 'http://127.0.0.1:5011', '127.0.0.1:7011', expect.stringMatching(/^\d+s ago$/), '-']);
    expect(us!.split(/\s{2,}/)).toEqual(['us', 'adding', 'http://127.0.0.1:5021', '127.0.0.1:7021', 'never', '0/1 (0%), 0 B, ETA unknown']);

    const json = await meridian(['region', 'list', '--json']);
    expect(JSON.parse(json.stdout).regions.map((region: { name: string }) => region.name)).toEqual(['eu', 'us']);
  });

  it('routing NAME off|on flips the router\'s switch for the region; list shows it off', async () => {
    const off = await meridian(['region', 'routing', 'eu', 'off']);
    expect(off).toEqual({ code: 0, stdout: 'routing to region eu is off\n', stderr: '' });
    const list = await meridian(['region', 'list']);
    expect(list.stdout.split('\n')[1]!.split(/\s{2,}/).slice(0, 2)).toEqual(['eu', 'active, routing off']);

    const on = await meridian(['--json', 'region', 'routing', 'eu', 'on']);
    expect(on.code).toBe(0);
    expect(JSON.parse(on.stdout)).toMatchObject({ name: 'eu', state: 'active', routing: true });

    expect((await meridian(['region', 'routing', 'eu', 'maybe'])).code).toBe(2);
    expect(await meridian(['region', 'routing', 'nowhere', 'off'])).toEqual({ code: 1, stdout: '', stderr: 'meridian: no region named "nowhere" is registered\n' });
  });

  it('a refusal from the control plane is one line on stderr and exit 1', async () => {
    const again = await meridian(['region', 'add', 'eu', '--http', 'http://127.0.0.1:5011', '--grpc', '127.0.0.1:7011', '--lat', '1', '--lon', '1']);
    expect(again).toEqual({ code: 1, stdout: '', stderr: 'meridian: region "eu" is already registered (state active); remove it first to register it again\n' });


    const unknown = await meridian(['region', 'remove', 'nowhere']);
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: 'meridian: no region named "nowhere" is registered\n' });
  });

  it('remove drains the region', async () => {
    const removed = await meridian(['region', 'remove', 'us']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/^region us is draining/);
    expect((await cp.request('GET', '/api/v1/regions')).body.regions[1].state).toBe('draining');
    await cp.request('POST', '/api/v1/regions', testRegion('us', 2));
  });
});

describe('meridian region remove --purge', () => {
  it('asks for confirmation: without --yes and without a terminal it changes nothing, exit 2', async () => {
    const unconfirmed = await meridian(['region', 'remove', 'us', '--purge']);
    expect(unconfirmed).toEqual({
      code: 2,
      stdout: '',
      stderr: 'meridian: --purge deletes every repository, manifest, tag and blob of region us for good: add --yes to confirm (there is no terminal to ask on)\n',
    });
    expect((await meridian(['region', 'remove', 'us', '--force'])).code).toBe(2);
    expect((await cp.request('GET', '/api/v1/regions')).body.regions.find((r: { name: string }) => r.name === 'us').state).not.toBe('draining');
  });

  it('deletes what the region holds, says what, and forgets the region; run again, it names the region as unknown', async () => {
    const ap = await FakeReplicaRegion.start('ap');
    try {
      const blob = await ap.addBlob('team/app', Buffer.alloc(2048, 1));
      await ap.addBlob('team/other', Buffer.alloc(1024, 2));
      expect((await cp.request('POST', '/api/v1/regions', { ...testRegion('ap', 3), grpc: ap.address })).status).toBe(201);
      const purged = await meridian(['region', 'remove', 'ap', '--purge', '--yes']);
      expect(purged.code).toBe(0);
      expect(purged.stderr).toBe('');
      expect(purged.stdout).toMatch(
        new RegExp(
          '^region ap purged and removed from the cluster; it deleted:\n' +
            '  2 repositories, 0 manifests, 0 tags, 2 blob links\n' +
            '  2 blobs \\(3\\.0 KiB\\)\n' +
            '\\d+ replication records removed; stop the region\'s processes now\n$',
        ),
      );
      expect(await ap.storedDigest(blob.digest)).toBeUndefined();
      expect((await cp.request('GET', '/api/v1/regions')).body.regions.map((r: { name: string }) => r.name)).not.toContain('ap');
      expect(await meridian(['region', 'remove', 'ap', '--purge', '--yes'])).toEqual({ code: 1, stdout: '', stderr: 'meridian: no region named "ap" is registered\n' });
    } finally {
      await ap.close();
    }
  });

  it('names a region it cannot reach; the region stays draining', async () => {
    const unreachable = await meridian(['region', 'remove', 'us', '--purge', '--yes']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^meridian: region "us" could not be reached at 127\.0\.0\.1:7021 to purge its data \(.*\); it stays draining: purge again once it is reachable, or leave it removed without purge\n$/);
    expect((await cp.request('GET', '/api/v1/regions')).body.regions.find((r: { name: string }) => r.name === 'us').state).toBe('draining');
    await cp.request('POST', '/api/v1/regions', testRegion('us', 2));
  });
});

describe('meridian replication status', () => {
  it('prints each region\'s state for REPO:TAG, REPO@DIGEST and every tag of REPO', async () => {
    const [id] = await cp.deliver([testChange('eu', 2, 2000, { kind: 'manifest.put', repository: 'team/app', digest: testDigest(2), mediaType: TEST_MANIFEST_TYPE, size: 2, tag: 'v2' })]);
    await cp.request('POST', `/api/v1/replication/${id}/us`, { outcome: 'failed', error: 'UNAVAILABLE: us is down' });

    const byTag = await meridian(['replication', 'status', 'team/app:v2']);
    expect(byTag.code).toBe(0);
    const [title, header, eu, us] = byTag.stdout.trimEnd().split('\n');
    expect(title).toBe(`team/app:v2 (${testDigest(2)})`);
    expect(header!.split(/\s{2,}/)).toEqual(['REGION', 'STATE', 'SINCE', 'ERROR']);
    expect(eu!.split(/\s{2,}/)).toEqual(['eu', 'present', expect.stringMatching(/ ago$/)]);
    expect(us!.split(/\s{2,}/)).toEqual(['us', 'failed', expect.stringMatching(/ ago$/), 'UNAVAILABLE: us is down']);

    const byDigest = await meridian(['replication', 'status', `team/app@${testDigest(2)}`, '--json']);
    expect(JSON.parse(byDigest.stdout)).toMatchObject({ repository: 'team/app', reference: testDigest(2), tag: null, digest: testDigest(2) });

    const all = await meridian(['replication', 'status', 'team/app']);
    expect(all.code).toBe(0);
    const lines = all.stdout.trimEnd().split('\n').map((line) => line.split(/\s{2,}/).slice(0, 4));
    expect(lines).toEqual([
      ['TAG', 'DIGEST', 'REGION', 'STATE'],
      ['v1', 'sha256:000000000000', 'eu', 'present'],
      ['v1', 'sha256:000000000000', 'us', 'pending'],
      ['v2', 'sha256:000000000000', 'eu', 'present'],
      ['v2', 'sha256:000000000000', 'us', 'failed'],
    ]);

    const missing = await meridian(['replication', 'status', 'team/app:nope']);
    expect(missing).toEqual({ code: 1, stdout: '', stderr: 'meridian: the catalog holds no tag nope in repository team/app\n' });
  });
});

describe('finding the control plane, and usage', () => {
  it('takes --server over MERIDIAN_SERVER, and .meridian/cluster.json of the current folder when neither is set', async () => {
    const viaOption = await meridian(['region', 'list', '--server', cp.url], { server: `http://127.0.0.1:${await freePort()}` });
    expect(viaOption.code).toBe(0);

    const clusterFolder = path.join(folder, 'cluster');
    await mkdir(path.join(clusterFolder, '.meridian'), { recursive: true });
    await writeFile(path.join(clusterFolder, '.meridian', 'cluster.json'), JSON.stringify({ controlPlane: cp.url, regions: [] }));
    const viaFile = await meridian(['region', 'list', '--json'], { server: null, cwd: clusterFolder });
    expect(viaFile.code).toBe(0);
    expect(JSON.parse(viaFile.stdout)).toEqual((await cp.request('GET', '/api/v1/regions')).body);
  });

  it('signs in as the administrator with --password or MERIDIAN_ADMIN_PASSWORD where the control plane asks for it, and says how when it is missing', async () => {
    const password = 'the administrator password of this test';
    const guarded = await startTestControlPlane({ MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: password });
    try {
      const withoutPassword = await meridian(['region', 'list'], { server: guarded.url });
      expect(withoutPassword.code).toBe(1);
      expect(withoutPassword.stderr).toBe(
        `meridian: the control plane at ${guarded.url} asks for the administrator's credentials (administrator credentials required (Basic) or a service token): pass --password or set MERIDIAN_ADMIN_PASSWORD (unless it was set, the control plane made the password into admin-password in its MERIDIAN_DATA_DIR)\n`,
      );
      expect(await meridian(['region', 'list', '--password', password], { server: guarded.url })).toMatchObject({ code: 0, stderr: '' });
      expect(await meridian(['region', 'list'], { server: guarded.url, env: { MERIDIAN_ADMIN_PASSWORD: password } })).toMatchObject({ code: 0, stderr: '' });
      const wrong = await meridian(['region', 'list', '--password', 'not the administrator password'], { server: guarded.url });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/check --user and --password or MERIDIAN_ADMIN_PASSWORD\n$/);
    } finally {
      await guarded.close();
    }
  });

  it('names the server it could not reach, exit 1', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const down = await meridian(['region', 'list'], { server: closed });
    expect(down).toEqual({ code: 1, stdout: '', stderr: `meridian: cannot reach the control plane at ${closed} (ECONNREFUSED): start it or pass --server\n` });
  });

  it('exits 2 for a usage mistake, 0 for --help', async () => {
    const missing = await meridian(['region', 'add', 'ap', '--grpc', '127.0.0.1:7031', '--lat', '1', '--lon', '1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--http <url>' not specified/);

    const badNumber = await meridian(['region', 'add', 'ap', '--http', 'http://x', '--grpc', 'x:1', '--lat', 'north', '--lon', '1']);
    expect(badNumber.code).toBe(2);
    expect(badNumber.stderr).toMatch(/'--lat <degrees>' argument 'north' is invalid\. a number from -90 to 90/);

    const badSize = await meridian(['region', 'add', 'ap', '--http', 'http://x', '--grpc', 'x:1', '--lat', '1', '--lon', '1', '--cache-size', '50GB']);
    expect(badSize.code).toBe(2);
    expect(badSize.stderr).toMatch(/'--cache-size <size>' argument '50GB' is invalid\. a size such as 50GiB, 512MiB or a number of bytes/);

    expect((await meridian(['replication', 'status', 'team/app@latest'])).code).toBe(2);
    expect((await meridian(['frobnicate'])).code).toBe(2);
    expect((await meridian(['region'])).code).toBe(2);

    const help = await meridian(['region', 'add', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: meridian region add \[options\] <name>/);
  });
});

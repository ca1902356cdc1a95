import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from './cli.js';
import { UsageError } from './errors.js';
import { resolveServer } from './server.js';

let root: string;
const here = () => path.join(root, 'here');
const checkout = () => path.join(root, 'checkout');

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'meridian-server-'));
  for (const [folder, url] of [
    [here(), 'http://127.0.0.1:6100/'],
    [checkout(), 'http://127.0.0.1:6200'],
  ] as const) {
    await mkdir(path.join(folder, '.meridian'), { recursive: true });
    await writeFile(path.join(folder, '.meridian', 'cluster.json'), JSON.stringify({ controlPlane: url }));
  }
  await mkdir(path.join(root, 'empty'));
  await mkdir(path.join(root, 'broken', '.meridian'), { recursive: true });
  await writeFile(path.join(root, 'broken', '.meridian', 'cluster.json'), '{"regions": []}');
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe('resolveServer', () => {
  it('takes --server, then MERIDIAN_SERVER, then cluster.json of the current folder, then of the checkout', async () => {
    const folders = () => [here(), checkout()];
    expect(await resolveServer({ option: 'http://a:1/', env: 'http://b:2', folders: folders() })).toBe('http://a:1');
    expect(await resolveServer({ env: 'http://b:2', folders: folders() })).toBe('http://b:2');
    expect(await resolveServer({ folders: folders() })).toBe('http://127.0.0.1:6100');
    expect(await resolveServer({ folders: [path.join(root, 'empty'), checkout()] })).toBe('http://127.0.0.1:6200');
  });

  it('is a usage error, saying where it looked, when nothing names a control plane or a value is not a URL', async () => {
    await expect(resolveServer({ folders: [path.join(root, 'empty')] })).rejects.toThrow(UsageError);
    await expect(resolveServer({ folders: [path.join(root, 'empty')] })).rejects.toThrow(/pass --server URL, set MERIDIAN_SERVER, or start a cluster .*empty\/\.meridian\/cluster\.json/);
    await expect(resolveServer({ folders: [path.join(root, 'broken')] })).rejects.toThrow(/names no "controlPlane" URL/);
    await expect(resolveServer({ option: '127.0.0.1:5100', folders: [] })).rejects.toThrow(/^--server: "127\.0\.0\.1:5100" is not a URL/);
    await expect(resolveServer({ option: 'localhost:5100', folders: [] })).rejects.toThrow(/^--server: "localhost:5100" is not an http:\/\/ or https:\/\/ URL$/);
    await expect(resolveServer({ env: 'nonsense', folders: [] })).rejects.toThrow(/^MERIDIAN_SERVER: "nonsense" is not a URL/);
  });
});

describe('parseReference', () => {
  it('reads REPO, REPO:TAG and REPO@DIGEST; a port in the name is not a tag', () => {
    expect(parseReference('team/app')).toEqual({ repository: 'team/app' });
    expect(parseReference('team/app:v1.2')).toEqual({ repository: 'team/app', tag: 'v1.2' });
    expect(parseReference('team/app@sha256:abc')).toEqual({ repository: 'team/app', digest: 'sha256:abc' });
    expect(parseReference('host:5000/app')).toEqual({ repository: 'host:5000/app' });
    expect(() => parseReference('team/app@latest')).toThrow(UsageError);
    expect(() => parseReference(':v1')).toThrow(UsageError);
  });
});

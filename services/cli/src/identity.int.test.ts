import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMeridian, type MeridianRun } from './run-meridian.js';
import { createTestDatabase, startGatewayProcess, type GatewayProcess, type TestDatabase } from '@meridian/testkit';

// `meridian user|scope-map|token`, run as a process (as `pnpm meridian` runs it) against a real
// gateway with MERIDIAN_AUTH=on.

const ADMIN_PASSWORD = 'cli-test-admin-password';
let gateway: GatewayProcess;
let database: TestDatabase;
let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(path.join(os.tmpdir(), 'meridian-cli-identity-'));
  database = await createTestDatabase();
  gateway = await startGatewayProcess({
    databaseUrl: database.url,
    dataDir: folder,
    env: { MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD, MERIDIAN_WORKERS: '1' },
  });
});
afterAll(async () => {
  await gateway?.stop();
  await database?.drop();
  if (folder) await rm(folder, { recursive: true, force: true });
});

/** `meridian ...args --server GATEWAY`, with MERIDIAN_ADMIN_PASSWORD unless `env` says otherwise. */
function meridian(args: string[], env: NodeJS.ProcessEnv = { MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD }): Promise<MeridianRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, INIT_CWD: folder, ...env };
  if (!('MERIDIAN_ADMIN_PASSWORD' in env)) delete childEnv.MERIDIAN_ADMIN_PASSWORD;
  delete childEnv.MERIDIAN_SERVER;
  return runMeridian([...args, '--server', gateway.url], childEnv);
}

/** Whether NAME:PASSWORD may read team-a/app's tag list on the gateway (Basic on /v2). */
async function canList(name: string, password: string): Promise<number> {
  const response = await fetch(`${gateway.url}/v2/team-a/app/tags/list`, { headers: { authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}` } });
  return response.status;
}

describe('meridian user, scope-map and token', () => {
  it('creates a scope map and a token, printing the token\'s password once', async () => {
    const map = await meridian(['scope-map', 'create', 'team-a-read', '--repository', 'team-a/*', '--action', 'content/read', '--action', 'metadata/read']);
    expect(map).toEqual({ code: 0, stdout: 'scope map team-a-read created: content/read, metadata/read on team-a/*\n', stderr: '' });
    const created = await meridian(['token', 'create', 'ci', '--scope-map', 'team-a-read', '--expires', '2099-01-31', '--json']);
    expect(created.code).toBe(0);
    const token = JSON.parse(created.stdout) as { name: string; scopeMap: string; expiresAt: string; password: string };
    expect(token).toMatchObject({ name: 'ci', scopeMap: 'team-a-read', expiresAt: '2099-01-31T00:00:00.000Z' });
    // The password signs in (404: the repository is empty, but access was granted).
    expect(await canList('ci', token.password)).toBe(404);
    const listed = await meridian(['token', 'list']);
    expect(listed.stdout).toContain('ci');
    expect(listed.stdout).not.toContain(token.password);
  });

  it('rotates either password, disables, enables and deletes a token', async () => {
    const first = JSON.parse((await meridian(['token', 'create', 'deploy', '--scope-map', 'team-a-read', '--json'])).stdout) as { password: string };
    const rotated = await meridian(['token', 'rotate', 'deploy', '--password', '2']);
    expect(rotated.code).toBe(0);
    const second = rotated.stdout.trim().split('\n').at(-1)!;
    expect(rotated.stdout).toMatch(/^password 2 of token deploy replaced; the new one, shown only this once:\n/);
    expect(await canList('deploy', first.password)).toBe(404);
    expect(await canList('deploy', second)).toBe(404);
    expect((await meridian(['token', 'disable', 'deploy'])).stdout).toBe('token deploy disabled\n');
    expect(await canList('deploy', second)).toBe(401);
    expect((await meridian(['token', 'enable', 'deploy'])).stdout).toBe('token deploy enabled\n');
    expect(await canList('deploy', second)).toBe(404);
    expect((await meridian(['token', 'delete', 'deploy'])).stdout).toBe('token deploy deleted\n');
    expect(await canList('deploy', second)).toBe(401);
  });

  it('creates and deletes users, taking the administrator\'s password from --password too', async () => {
    const created = await meridian(['user', 'create', 'ops', '--password', ADMIN_PASSWORD], {});
    expect(created.code).toBe(0);
    const password = created.stdout.trim().split('\n').at(-1)!;
    expect(await canList('ops', password)).toBe(404);
    expect(await meridian(['user', 'delete', 'ops'])).toEqual({ code: 0, stdout: 'user ops deleted\n', stderr: '' });
    expect(await canList('ops', password)).toBe(401);
  });

  it('says in one line what went wrong: a wrong password, no password, an unknown scope map, a bad action', async () => {
    const wrong = await meridian(['token', 'list', '--password', 'not-the-password'], {});
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^meridian: http:\/\/127\.0\.0\.1:\d+ refused the administrator's credentials .*MERIDIAN_ADMIN_PASSWORD\n$/);
    const none = await meridian(['token', 'list'], {});
    expect(none).toMatchObject({ code: 2, stderr: 'meridian: the administrator\'s password is needed: pass --password or set MERIDIAN_ADMIN_PASSWORD\n' });
    const unknown = await meridian(['token', 'create', 'x', '--scope-map', 'nope']);
    expect(unknown).toMatchObject({ code: 1, stderr: 'meridian: no scope map nope\n' });
    const action = await meridian(['scope-map', 'create', 'x', '--repository', 'a/*', '--action', 'content/everything']);
    expect(action.code).toBe(2);
    expect(action.stderr).toContain('one of content/read, content/write, content/delete, metadata/read, metadata/write');
  });
});

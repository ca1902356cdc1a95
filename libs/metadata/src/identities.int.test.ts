import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { createPool } from './db.js';
import { Metadata } from './metadata.js';

let database: TestDatabase;
let metadata: Metadata;
let pool: ReturnType<typeof createPool>;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ databaseUrl: database.url, max: 8 });
  metadata = new Metadata(pool);
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('IdentityStore', () => {
  it('lets gateways starting together agree on one signing key', async () => {
    const candidates = Array.from({ length: 8 }, () => ({ kid: randomUUID(), privateJwk: { d: randomUUID() }, publicJwk: { x: randomUUID() } }));
    const chosen = await Promise.all(candidates.map((candidate) => metadata.transaction((tx) => tx.identities.ensureSigningKey(candidate))));
    expect(new Set(chosen.map((key) => key.kid)).size).toBe(1);
    expect(await metadata.identities.publicKeys()).toEqual([chosen[0]!.publicJwk]);
  });

  it('refuses to delete a scope map a token uses, and says which rows it did not find', async () => {
    expect(await metadata.identities.insertScopeMap({ name: 'm', repositories: ['a/*'], actions: ['content/read'] })).toBe(true);
    expect(await metadata.identities.insertScopeMap({ name: 'm', repositories: ['b/*'], actions: ['content/read'] })).toBe(false);
    expect(await metadata.identities.insertToken({ name: 't', scopeMap: 'nope', password1Hash: 'h', expiresAt: null })).toBe('no-scope-map');
    expect(await metadata.identities.insertToken({ name: 't', scopeMap: 'm', password1Hash: 'h', expiresAt: null })).toBe('created');
    expect(await metadata.identities.insertToken({ name: 't', scopeMap: 'm', password1Hash: 'h', expiresAt: null })).toBe('exists');
    expect(await metadata.identities.deleteScopeMap('m')).toBe('in-use');
    expect(await metadata.identities.findToken('t')).toMatchObject({ scopeMap: { name: 'm', repositories: ['a/*'] }, password1Hash: 'h', password2Hash: null, disabled: false });
    expect(await metadata.identities.setTokenPassword('t', 2, 'h2')).toBe(true);
    expect(await metadata.identities.setTokenPassword('gone', 2, 'h2')).toBe(false);
    expect(await metadata.identities.deleteToken('t')).toBe(true);
    expect(await metadata.identities.deleteScopeMap('m')).toBe('deleted');
    expect(await metadata.identities.deleteScopeMap('m')).toBe('unknown');
  });
});

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';
import { createPool } from './db.js';
import { Metadata } from './metadata.js';
import { changedSignIns } from './identities.js';

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

  it('takes a cluster snapshot as it is (users, scope maps, tokens with their states), and writes nothing when it has not changed', async () => {
    await metadata.identities.insertUser({ name: 'local-only', passwordHash: 'x' });
    const snapshot = {
      users: [{ name: 'admin', passwordHash: '$argon2id$admin' }],
      scopeMaps: [{ name: 'team-a-read', repositories: ['team-a/*'], actions: ['content/read'] }],
      tokens: [{ name: 'ci', scopeMap: 'team-a-read', password1Hash: 'h1', password2Hash: null, expiresAt: new Date('2030-01-01T00:00:00Z'), disabled: false }],
    };
    expect(changedSignIns(await metadata.identities.snapshot(), snapshot)).toEqual(['local-only', 'admin', 'ci']);
    expect(await metadata.transaction((tx) => tx.identities.replaceWith(snapshot))).toBe(true);
    expect(await metadata.identities.snapshot()).toEqual(snapshot);
    // The same snapshot again, its expiry as the JSON text it travels as: nothing to write.
    const travelled = { ...snapshot, tokens: [{ ...snapshot.tokens[0]!, expiresAt: '2030-01-01T00:00:00.000Z' as unknown as Date }] };
    expect(changedSignIns(snapshot, travelled)).toEqual([]);
    expect(await metadata.transaction((tx) => tx.identities.replaceWith(travelled))).toBe(false);
    const disabled = { ...snapshot, tokens: [{ ...snapshot.tokens[0]!, disabled: true }] };
    expect(changedSignIns(travelled, disabled)).toEqual(['ci']);
    expect(await metadata.transaction((tx) => tx.identities.replaceWith(disabled))).toBe(true);
    // A token's scope map widened: the token signs in to more, so it counts as changed.
    const widened = { ...disabled, scopeMaps: [{ ...snapshot.scopeMaps[0]!, actions: ['content/read', 'content/write'] }] };
    expect(changedSignIns(disabled, widened)).toEqual(['ci']);
    expect(await metadata.transaction((tx) => tx.identities.replaceWith(widened))).toBe(true);
    // A scope map no token uses changes nobody's sign-in, but is stored all the same.
    const unused = { ...widened, scopeMaps: [...widened.scopeMaps, { name: 'spare', repositories: ['*'], actions: ['content/read'] }] };
    expect(changedSignIns(widened, unused)).toEqual([]);
    expect(await metadata.transaction((tx) => tx.identities.replaceWith(unused))).toBe(true);
    expect(await metadata.identities.findToken('ci')).toMatchObject({ disabled: true, scopeMap: { name: 'team-a-read' } });
    expect(await metadata.transaction((tx) => tx.identities.replaceWith({ users: [], scopeMaps: [], tokens: [] }))).toBe(true);
    expect(await metadata.identities.snapshot()).toEqual({ users: [], scopeMaps: [], tokens: [] });
  });

  it('keeps the other regions\' public keys beside its own, and signs only with its own', async () => {
    const own = await metadata.transaction((tx) => tx.identities.ensureSigningKey({ kid: randomUUID(), privateJwk: { d: 'own' }, publicJwk: { x: 'own' } }));
    expect(await metadata.identities.replacePeerKeys([{ kid: 'peer-1', region: 'us-east', publicJwk: { x: 'peer-1' } }, { kid: own.kid, region: 'eu-west', publicJwk: own.publicJwk }])).toBe(true);
    expect(await metadata.identities.publicKeys()).toEqual([own.publicJwk, { x: 'peer-1' }]);
    expect(await metadata.identities.ownPublicKeys()).toEqual([own.publicJwk]);
    const again = await metadata.transaction((tx) => tx.identities.ensureSigningKey({ kid: randomUUID(), privateJwk: { d: 'new' }, publicJwk: { x: 'new' } }));
    expect(again.kid).toBe(own.kid);
    expect(await metadata.identities.replacePeerKeys([{ kid: 'peer-1', region: 'us-east', publicJwk: { x: 'peer-1' } }])).toBe(false);
    // A key the cluster no longer lists is dropped; the region's own stays.
    expect(await metadata.identities.replacePeerKeys([{ kid: 'peer-2', region: 'us-east', publicJwk: { x: 'peer-2' } }])).toBe(true);
    expect(await metadata.identities.publicKeys()).toEqual([own.publicJwk, { x: 'peer-2' }]);
  });

  it('rotates: a due key is replaced, the new one signs once active, and the replaced one is dropped only after the given time', async () => {
    const ensure = (rotation: { replaceAfterSeconds: number; activationSeconds: number }) =>
      metadata.transaction((tx) => tx.identities.ensureSigningKey({ kid: randomUUID(), privateJwk: { d: 'next' }, publicJwk: { x: randomUUID() } }, rotation));
    const current = await ensure({ replaceAfterSeconds: 3600, activationSeconds: 0 });
    // Not due: the same key.
    expect((await ensure({ replaceAfterSeconds: 3600, activationSeconds: 0 })).kid).toBe(current.kid);
    // Due: a new key is stored, but signs nothing until it has been stored for its activation time.
    expect((await ensure({ replaceAfterSeconds: 0, activationSeconds: 3600 })).kid).toBe(current.kid);
    const owned = await metadata.identities.ownPublicKeys();
    expect(owned).toHaveLength(2);
    const next = await ensure({ replaceAfterSeconds: 3600, activationSeconds: 0 });
    expect(next.kid).not.toBe(current.kid);
    expect(next.publicJwk).toEqual(owned[1]);
    // The replaced key verifies until its tokens have expired; then it goes, and the new one stays.
    expect(await metadata.identities.dropReplacedKeys(3600)).toBe(0);
    expect(await metadata.identities.dropReplacedKeys(0)).toBe(1);
    expect(await metadata.identities.ownPublicKeys()).toEqual([next.publicJwk]);
  });
});

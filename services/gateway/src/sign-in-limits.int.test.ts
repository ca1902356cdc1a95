import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityService, SignInLimiter } from '@meridian/auth';
import { Metadata, createPool, signInFailureCounters } from '@meridian/metadata';
import { createTestDatabase, type TestDatabase } from '@meridian/testkit';

// The limits of failed sign-ins as the gateway builds them (libs/auth SignInLimiter over
// libs/metadata's counters in Postgres), under attempts that arrive together: an attempt is
// counted before its password is checked, so a burst cannot all pass the check that comes
// before any of its failures is recorded.

let database: TestDatabase;
let pool: ReturnType<typeof createPool>;
let identities: IdentityService;
/** Passwords looked at: each check of a user's password starts by reading the user. */
let checks = 0;

beforeAll(async () => {
  database = await createTestDatabase();
  pool = createPool({ databaseUrl: database.url, max: 8 });
  const limiter = new SignInLimiter(signInFailureCounters(pool, { perName: 3, perAddress: 100, windowSeconds: 300 }));
  const store = new Metadata(pool).identities;
  // The real store, its reads of users counted.
  const counted = Object.assign(Object.create(store) as typeof store, {
    findUser: (name: string) => {
      checks += 1;
      return store.findUser(name);
    },
  });
  identities = new IdentityService(counted, { limiter });
  await identities.createUser('alice', 'alice has a long password');
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('failed sign-ins counted in Postgres', () => {
  it('checks at most the limit of a burst of guesses for one name from one address, and marks one refusal as the first', async () => {
    checks = 0;
    const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => identities.signIn('alice', `guess ${i}`, '192.0.2.1')));
    const checked = outcomes.filter((outcome) => !outcome.refused);
    const refused = outcomes.flatMap((outcome) => (outcome.refused ? [outcome.refused] : []));
    expect(checked).toHaveLength(3);
    expect(checks).toBe(3);
    expect(checked.every((outcome) => outcome.identity === undefined)).toBe(true);
    expect(refused).toHaveLength(9);
    expect(refused.every((refusal) => refusal.by === 'name' && refusal.retryAfterSeconds >= 1 && refusal.retryAfterSeconds <= 300)).toBe(true);
    expect(refused.filter((refusal) => refusal.first)).toHaveLength(1);
    // The right password too is refused now from there, unchecked; from another address the name
    // is not limited (guesses sent from anywhere must not lock its owner out).
    expect((await identities.signIn('alice', 'alice has a long password', '192.0.2.1')).refused?.by).toBe('name');
    expect(checks).toBe(3);
    expect((await identities.signIn('alice', 'alice has a long password', '192.0.2.2')).identity?.name).toBe('alice');
  });

  it('forgives a name its failures when the right password comes before the limit', async () => {
    await identities.createUser('bob', 'bob has a long password');
    for (const guess of ['one', 'two']) expect((await identities.signIn('bob', guess, '192.0.2.3')).refused).toBeUndefined();
    expect((await identities.signIn('bob', 'bob has a long password', '192.0.2.3')).identity?.name).toBe('bob');
    // Three more failures are allowed again before the fourth attempt is refused.
    for (const guess of ['three', 'four', 'five']) expect((await identities.signIn('bob', guess, '192.0.2.3')).refused).toBeUndefined();
    expect((await identities.signIn('bob', 'six', '192.0.2.3')).refused?.by).toBe('name');
  });

  it('forgives only the failures sent from the address of the right password', async () => {
    await identities.createUser('carol', 'carol has a long password');
    for (const guess of ['one', 'two', 'three']) expect((await identities.signIn('carol', guess, '192.0.2.4')).refused).toBeUndefined();
    // Carol signs in from elsewhere: the guesses sent from 192.0.2.4 still count there.
    expect((await identities.signIn('carol', 'carol has a long password', '192.0.2.5')).identity?.name).toBe('carol');
    expect((await identities.signIn('carol', 'four', '192.0.2.4')).refused?.by).toBe('name');
  });
});

import { describe, expect, it } from 'vitest';
import { VerifiedSignIns } from './verified-sign-ins.js';

/** A clock the test moves by hand, for the TTL. */
function manualClock() {
  let ms = 1_000;
  return { perf: { now: () => ms }, advance: (by: number) => (ms += by) };
}

const now = new Date('2026-12-02T12:00:00Z');

/** Signs in with a check that finds `signIn`, so that it is remembered. */
function remember(signIns: VerifiedSignIns<string>, name: string, password: string, signIn: string, expiresAt: Date | null = null) {
  return signIns.signIn(name, password, now, 'client', async () => ({ signIn, expiresAt }));
}

/** A check that finds `signIn` (or fails, given undefined) once released, counting its calls. */
function heldCheck(signIn: string | undefined) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const held = {
    calls: 0,
    release,
    check: async () => {
      held.calls++;
      await released;
      return signIn === undefined ? { failure: undefined } : { signIn, expiresAt: null };
    },
  };
  return held;
}

describe('verified sign-ins', () => {
  it('answers a remembered name and password until the TTL ends, and nothing for another password', async () => {
    const clock = manualClock();
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000, perf: clock.perf });
    await remember(signIns, 'ci', 'right', 'ci as token');
    expect(signIns.get('ci', 'right', now)).toBe('ci as token');
    expect(signIns.get('ci', 'wrong', now)).toBeUndefined();
    expect(signIns.get('other', 'right', now)).toBeUndefined();
    clock.advance(59_000);
    expect(signIns.get('ci', 'right', now)).toBe('ci as token');
    clock.advance(2_000);
    expect(signIns.get('ci', 'right', now)).toBeUndefined();
  });

  it('tells a name with a separator in it from the name before it', async () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    await remember(signIns, 'a', 'b\0c', 'a');
    expect(signIns.get('a\0b', 'c', now)).toBeUndefined();
    expect(signIns.get('a', 'b\0c', now)).toBe('a');
  });

  it('forgets every password of a name at once, and no other name', async () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    await remember(signIns, 'ci', 'password-1', 'ci');
    await remember(signIns, 'ci', 'password-2', 'ci');
    await remember(signIns, 'ops', 'password', 'ops');
    signIns.forget('ci');
    expect(signIns.get('ci', 'password-1', now)).toBeUndefined();
    expect(signIns.get('ci', 'password-2', now)).toBeUndefined();
    expect(signIns.get('ops', 'password', now)).toBe('ops');
  });

  it('keeps nothing a check found if an identity changed while it ran, and lets no later caller wait for it', async () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    const before = heldCheck('ci with the old password');
    const first = signIns.signIn('ci', 'old password', now, 'client', before.check);
    signIns.forget('ci');
    const after = heldCheck(undefined);
    const second = signIns.signIn('ci', 'old password', now, 'client', after.check);
    before.release();
    after.release();
    expect(await first).toEqual({ signIn: 'ci with the old password', remembered: false, joined: false });
    expect(await second).toEqual({ failure: undefined, remembered: false, joined: false });
    expect(after.calls).toBe(1);
    expect(signIns.get('ci', 'old password', now)).toBeUndefined();
  });

  it('runs one check for the callers from one source asking the same meanwhile, who count as remembered when it succeeds', async () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    const held = heldCheck('ci');
    const callers = Array.from({ length: 8 }, () => signIns.signIn('ci', 'right', now, 'client', held.check));
    const otherPassword = heldCheck(undefined);
    const wrong = signIns.signIn('ci', 'wrong', now, 'client', otherPassword.check);
    const otherSource = heldCheck('ci');
    const elsewhere = signIns.signIn('ci', 'right', now, 'another client', otherSource.check);
    for (const check of [held, otherPassword, otherSource]) check.release();
    const answers = await Promise.all(callers);
    expect([held.calls, otherPassword.calls, otherSource.calls]).toEqual([1, 1, 1]);
    expect(answers[0]).toEqual({ signIn: 'ci', remembered: false, joined: false });
    expect(answers.slice(1)).toEqual(Array.from({ length: 7 }, () => ({ signIn: 'ci', remembered: true, joined: true })));
    expect(await wrong).toEqual({ failure: undefined, remembered: false, joined: false });
    expect(await elsewhere).toEqual({ signIn: 'ci', remembered: false, joined: false });
  });

  it('gives every caller waiting for a failed check its failure, and remembers nothing', async () => {
    const signIns = new VerifiedSignIns<string, string>({ ttlMs: 60_000 });
    let calls = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const check = async () => {
      calls++;
      await released;
      return { failure: 'too many failures' };
    };
    const callers = Array.from({ length: 3 }, () => signIns.signIn('ci', 'wrong', now, 'client', check));
    release();
    expect(await Promise.all(callers)).toEqual([
      { failure: 'too many failures', remembered: false, joined: false },
      { failure: 'too many failures', remembered: false, joined: true },
      { failure: 'too many failures', remembered: false, joined: true },
    ]);
    expect(calls).toBe(1);
    await signIns.signIn('ci', 'wrong', now, 'client', check);
    expect(calls).toBe(2);
  });

  it('stops at the identity\'s own expiry, before the TTL', async () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    await remember(signIns, 'short-lived', 'password', 'short-lived', new Date(now.getTime() + 1_000));
    expect(signIns.get('short-lived', 'password', now)).toBe('short-lived');
    expect(signIns.get('short-lived', 'password', new Date(now.getTime() + 1_000))).toBeUndefined();
  });

  it('is bounded: the least recently used sign-in goes first', async () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000, max: 2 });
    await remember(signIns, 'a', 'p', 'a');
    await remember(signIns, 'b', 'p', 'b');
    expect(signIns.get('a', 'p', now)).toBe('a');
    await remember(signIns, 'c', 'p', 'c');
    expect(signIns.get('b', 'p', now)).toBeUndefined();
    expect(signIns.get('a', 'p', now)).toBe('a');
  });
});

import { describe, expect, it } from 'vitest';
import { VerifiedSignIns } from './verified-sign-ins.js';

/** A clock the test moves by hand, for the TTL. */
function manualClock() {
  let ms = 1_000;
  return { perf: { now: () => ms }, advance: (by: number) => (ms += by) };
}

const now = new Date('2026-12-02T12:00:00Z');

describe('verified sign-ins', () => {
  it('answers a remembered name and password until the TTL ends, and nothing for another password', () => {
    const clock = manualClock();
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000, perf: clock.perf });
    signIns.remember('ci', 'right', 'ci as token', null, signIns.changes);
    expect(signIns.get('ci', 'right', now)).toBe('ci as token');
    expect(signIns.get('ci', 'wrong', now)).toBeUndefined();
    expect(signIns.get('other', 'right', now)).toBeUndefined();
    clock.advance(59_000);
    expect(signIns.get('ci', 'right', now)).toBe('ci as token');
    clock.advance(2_000);
    expect(signIns.get('ci', 'right', now)).toBeUndefined();
  });

  it('tells a name with a separator in it from the name before it', () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    signIns.remember('a', 'b\0c', 'a', null, signIns.changes);
    expect(signIns.get('a\0b', 'c', now)).toBeUndefined();
    expect(signIns.get('a', 'b\0c', now)).toBe('a');
  });

  it('forgets every password of a name at once, and no other name', () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    signIns.remember('ci', 'password-1', 'ci', null, signIns.changes);
    signIns.remember('ci', 'password-2', 'ci', null, signIns.changes);
    signIns.remember('ops', 'password', 'ops', null, signIns.changes);
    signIns.forget('ci');
    expect(signIns.get('ci', 'password-1', now)).toBeUndefined();
    expect(signIns.get('ci', 'password-2', now)).toBeUndefined();
    expect(signIns.get('ops', 'password', now)).toBe('ops');
  });

  it('keeps nothing a check found if an identity changed while it ran', () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    const seen = signIns.changes;
    signIns.forget('ci');
    signIns.remember('ci', 'old password', 'ci', null, seen);
    expect(signIns.get('ci', 'old password', now)).toBeUndefined();
  });

  it('stops at the identity\'s own expiry, before the TTL', () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000 });
    signIns.remember('short-lived', 'password', 'short-lived', new Date(now.getTime() + 1_000), signIns.changes);
    expect(signIns.get('short-lived', 'password', now)).toBe('short-lived');
    expect(signIns.get('short-lived', 'password', new Date(now.getTime() + 1_000))).toBeUndefined();
  });

  it('is bounded: the least recently used sign-in goes first', () => {
    const signIns = new VerifiedSignIns<string>({ ttlMs: 60_000, max: 2 });
    signIns.remember('a', 'p', 'a', null, signIns.changes);
    signIns.remember('b', 'p', 'b', null, signIns.changes);
    expect(signIns.get('a', 'p', now)).toBe('a');
    signIns.remember('c', 'p', 'c', null, signIns.changes);
    expect(signIns.get('b', 'p', now)).toBeUndefined();
    expect(signIns.get('a', 'p', now)).toBe('a');
  });
});

import { BlobUploadUnknownError } from '@meridian/oci';
import { describe, expect, it } from 'vitest';
import { UploadStateSigner } from './upload-state.js';

const HOUR = 3600_000;
const secret = 's'.repeat(32);
const state = { repository: 'app', id: '00000000-0000-4000-8000-000000000001', startedAt: '2026-12-03T00:00:00.000Z' };

/** A signer whose clock the test moves. */
function signerAt(start: number) {
  const clock = { now: start };
  return { clock, signer: new UploadStateSigner(secret, { maxIdleMs: 24 * HOUR, now: () => clock.now }) };
}

// A session has no record until it closes: its token is all there is of it, so a token idle past
// MERIDIAN_UPLOAD_MAX_IDLE_HOURS must be refused, as the purged session of Distribution's
// purgeuploads.go is ("Pushing blobs": BLOB_UPLOAD_UNKNOWN for an unknown session).
describe('UploadStateSigner', () => {
  it('accepts a token until it has been idle for the limit, then answers BLOB_UPLOAD_UNKNOWN', () => {
    const { clock, signer } = signerAt(Date.UTC(2026, 11, 3));
    const token = signer.sign(state);
    clock.now += 24 * HOUR;
    expect(signer.verify(token, 'app', state.id)).toEqual(state);
    clock.now += 1;
    expect(() => signer.verify(token, 'app', state.id)).toThrow(BlobUploadUnknownError);
  });

  it('renews the token of a session in use, so a session busy for longer than the limit keeps going', () => {
    const { clock, signer } = signerAt(Date.UTC(2026, 11, 3));
    let token = signer.sign(state);
    for (let hour = 0; hour < 48; hour += 12) {
      clock.now += 12 * HOUR;
      // A chunk arrives with the token the last answer gave, and its answer gives the next one.
      token = signer.sign(signer.verify(token, 'app', state.id));
    }
    clock.now += 23 * HOUR;
    expect(signer.verify(token, 'app', state.id)).toEqual(state);
  });

  it('refuses a token altered or carried to another repository or session', () => {
    const { signer } = signerAt(Date.UTC(2026, 11, 3));
    const token = signer.sign(state);
    expect(() => signer.verify(token, 'other', state.id)).toThrow(BlobUploadUnknownError);
    expect(() => signer.verify(token, 'app', '00000000-0000-4000-8000-000000000002')).toThrow(BlobUploadUnknownError);
    expect(() => signer.verify(`${token}x`, 'app', state.id)).toThrow(BlobUploadUnknownError);
  });
});

import { createHmac } from 'node:crypto';
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

  // The closing PUT may reach any gateway process: what the last chunk's bytes hashed to travels
  // in the token (BlobStore appendChunk), and a client must not be able to choose it.
  it('carries what the last chunk noted, and refuses a token whose note was altered', () => {
    const { signer } = signerAt(Date.UTC(2026, 11, 3));
    const noted = { size: 1048576, digest: `sha256:${'a'.repeat(64)}`, file: '0123456789abcdef' };
    const token = signer.sign({ ...state, noted });
    expect(signer.verify(token, 'app', state.id)).toEqual({ ...state, noted });
    const [payload, mac] = token.split('.');
    const fields = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as unknown[];
    fields[6] = `sha256:${'b'.repeat(64)}`;
    const altered = `${Buffer.from(JSON.stringify(fields)).toString('base64url')}.${mac}`;
    expect(() => signer.verify(altered, 'app', state.id)).toThrow(BlobUploadUnknownError);
  });

  // A session that ended before tokens carried their expiry had no record of its end, so a
  // token of that format could replay it (a closing PUT linking its blob again).
  it('refuses a token of the format without an issue time and expiry', () => {
    const { signer } = signerAt(Date.UTC(2026, 11, 3));
    const payload = Buffer.from(JSON.stringify([state.repository, state.id, state.startedAt])).toString('base64url');
    const token = `${payload}.${createHmac('sha256', secret).update(payload).digest('base64url')}`;
    expect(() => signer.verify(token, 'app', state.id)).toThrow(BlobUploadUnknownError);
  });

  // The gateways of a region may be configured apart (a rolling change of the setting): how long
  // a token lasts is decided once, by the gateway that issued it, so the record of an ended
  // session can be forgotten after a bound every gateway keeps.
  it('keeps to the expiry the issuing gateway signed, whatever the idle limit of the gateway that checks it', () => {
    const clock = { now: Date.UTC(2026, 11, 3) };
    const short = new UploadStateSigner(secret, { maxIdleMs: HOUR, now: () => clock.now });
    const long = new UploadStateSigner(secret, { maxIdleMs: 24 * HOUR, now: () => clock.now });
    const token = short.sign(state);
    clock.now += HOUR;
    expect(long.verify(token, 'app', state.id)).toEqual(state);
    clock.now += 1;
    expect(() => long.verify(token, 'app', state.id)).toThrow(BlobUploadUnknownError);
  });
});

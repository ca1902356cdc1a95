import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlobUrlSigner } from './blob-url-signatures.js';

const secret = 'a region upload secret of at least thirty-two characters';
const digest = `sha256:${'a'.repeat(64)}`;
const now = Date.UTC(2026, 0, 1);

describe('signed blob URLs (HMAC-SHA256 over method, repository, digest and expiry)', () => {
  const signer = new BlobUrlSigner(secret, 60);

  it('verify for the repository and digest they were signed for, until they expire', () => {
    const { expires, signature } = signer.sign('team/app', digest, now);
    expect(Number(expires)).toBe(now / 1000 + 60);
    expect(signer.verifies('team/app', digest, expires, signature, now)).toBe(true);
    expect(signer.verifies('team/app', digest, expires, signature, now + 59_999)).toBe(true);
    // Another gateway of the region, with the same secret.
    expect(new BlobUrlSigner(secret).verifies('team/app', digest, expires, signature, now)).toBe(true);
  });

  it('refuse an expired signature', () => {
    const { expires, signature } = signer.sign('team/app', digest, now);
    expect(signer.verifies('team/app', digest, expires, signature, now + 60_000)).toBe(false);
  });

  it('refuse another digest, another repository, another region\'s secret', () => {
    const { expires, signature } = signer.sign('team/app', digest, now);
    expect(signer.verifies('team/app', `sha256:${'b'.repeat(64)}`, expires, signature, now)).toBe(false);
    expect(signer.verifies('team/other', digest, expires, signature, now)).toBe(false);
    expect(new BlobUrlSigner(`${secret} elsewhere`).verifies('team/app', digest, expires, signature, now)).toBe(false);
  });

  it('refuse a tampered expiry or signature, and malformed or missing ones, without throwing', () => {
    const { expires, signature } = signer.sign('team/app', digest, now);
    expect(signer.verifies('team/app', digest, String(Number(expires) + 3600), signature, now)).toBe(false);
    const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    expect(signer.verifies('team/app', digest, expires, flipped, now)).toBe(false);
    for (const [e, s] of [[expires, undefined], [undefined, signature], [expires, ''], [expires, signature.slice(1)], [`${expires}x`, signature], [expires, `${signature}=`], ['-1', signature], [null, null]] as const) {
      expect(signer.verifies('team/app', digest, e, s, now)).toBe(false);
    }
  });

  it('sign with a key derived from the secret, never with the secret itself', () => {
    const { expires, signature } = signer.sign('team/app', digest, now);
    const withRawSecret = createHmac('sha256', secret).update(`GET\nteam/app\n${digest}\n${expires}`).digest('base64url');
    expect(signature).not.toBe(withRawSecret);
    expect(signer.verifies('team/app', digest, expires, withRawSecret, now)).toBe(false);
  });
});

/**
 * Digests as image-spec descriptor.md "Digests" defines them (`algorithm ":" encoded`), restricted
 * to the registered algorithms sha256 and sha512 with lower-case hex ("Registered algorithms").
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createDigester, digestOf, isDigest, parseDigest } from './digest.js';
import { DigestInvalidError, RegistryError } from './errors.js';

const SHA256_HEX = 'a'.repeat(64);
const SHA512_HEX = '0123456789abcdef'.repeat(8);
const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function expectDigestInvalid(value: string): void {
  let caught: unknown;
  try {
    parseDigest(value);
  } catch (err) {
    caught = err;
  }
  expect(caught, `parseDigest(${JSON.stringify(value)}) should throw`).toBeInstanceOf(DigestInvalidError);
  expect(caught).toBeInstanceOf(RegistryError);
  expect((caught as DigestInvalidError).kind).toBe('DigestInvalid');
  expect(isDigest(value)).toBe(false);
}

describe('parseDigest', () => {
  // image-spec descriptor.md "SHA-256": 64 lower-case hex characters.
  it('accepts a sha256 digest of 64 lower-case hex characters (descriptor.md "SHA-256")', () => {
    const digest = parseDigest(`sha256:${SHA256_HEX}`);
    expect(digest).toEqual({ algorithm: 'sha256', encoded: SHA256_HEX, value: `sha256:${SHA256_HEX}` });
    expect(parseDigest(EMPTY_SHA256).encoded).toBe(EMPTY_SHA256.slice('sha256:'.length));
  });

  // image-spec descriptor.md "SHA-512": 128 lower-case hex characters.
  it('accepts a sha512 digest of 128 lower-case hex characters (descriptor.md "SHA-512")', () => {
    const digest = parseDigest(`sha512:${SHA512_HEX}`);
    expect(digest).toEqual({ algorithm: 'sha512', encoded: SHA512_HEX, value: `sha512:${SHA512_HEX}` });
  });

  // image-spec descriptor.md "Registered algorithms": the encoded portion MUST match /[a-f0-9]{64}/ (resp. 128).
  it('refuses upper-case hex (descriptor.md "Registered algorithms")', () => {
    expectDigestInvalid(`sha256:${'A'.repeat(64)}`);
    expectDigestInvalid(`sha256:${SHA256_HEX.slice(0, 63)}F`);
    expectDigestInvalid(`sha512:${SHA512_HEX.toUpperCase()}`);
    expectDigestInvalid(`SHA256:${SHA256_HEX}`);
  });

  it('refuses encoded parts of the wrong length (descriptor.md "SHA-256" / "SHA-512")', () => {
    expectDigestInvalid(`sha256:${'a'.repeat(63)}`);
    expectDigestInvalid(`sha256:${'a'.repeat(65)}`);
    expectDigestInvalid(`sha256:${'a'.repeat(128)}`);
    expectDigestInvalid(`sha512:${'a'.repeat(64)}`);
    expectDigestInvalid(`sha512:${'a'.repeat(127)}`);
    expectDigestInvalid(`sha512:${'a'.repeat(129)}`);
    expectDigestInvalid('sha256:');
    expectDigestInvalid('sha256:a');
  });

  it('refuses algorithms other than sha256 and sha512', () => {
    expectDigestInvalid(`md5:${'a'.repeat(32)}`);
    expectDigestInvalid(`sha384:${'a'.repeat(96)}`);
    expectDigestInvalid(`sha1:${'a'.repeat(40)}`);
    expectDigestInvalid(`blake3:${'a'.repeat(64)}`);
    expectDigestInvalid(`sha256+b64u:${'a'.repeat(64)}`);
  });

  it('says "unsupported" for a well-formed unknown algorithm and "malformed" otherwise', () => {
    expect(() => parseDigest(`md5:${'a'.repeat(32)}`)).toThrow(/unsupported digest algorithm/);
    expect(() => parseDigest('not a digest')).toThrow(/malformed digest/);
  });

  it('refuses path tricks and encodings', () => {
    expectDigestInvalid('sha256:../../etc/passwd');
    expectDigestInvalid(`sha256:%2F${'a'.repeat(61)}`);
    expectDigestInvalid(`sha256:${'a'.repeat(32)}/${'a'.repeat(31)}`);
    expectDigestInvalid(`sha256:${'a'.repeat(64)}/`);
    expectDigestInvalid(`../sha256:${'a'.repeat(64)}`);
    expectDigestInvalid(`sha256:${'a'.repeat(64)}\n`);
    expectDigestInvalid(`sha256:${'a'.repeat(64)}\0`);
    expectDigestInvalid(` sha256:${'a'.repeat(64)}`);
  });

  it('refuses the empty string and strings without an algorithm', () => {
    expectDigestInvalid('');
    expectDigestInvalid(':');
    expectDigestInvalid(SHA256_HEX);
    expectDigestInvalid(`:${SHA256_HEX}`);
    expectDigestInvalid(`sha256::${SHA256_HEX}`);
  });

  it('keeps the error message short for a huge input', () => {
    try {
      parseDigest(`x${'y'.repeat(10_000)}`);
      expect.unreachable('parseDigest should throw');
    } catch (err) {
      expect(err).toBeInstanceOf(DigestInvalidError);
      expect((err as Error).message.length).toBeLessThan(200);
    }
  });
});

describe('isDigest', () => {
  it('agrees with parseDigest on valid digests', () => {
    expect(isDigest(`sha256:${SHA256_HEX}`)).toBe(true);
    expect(isDigest(`sha512:${SHA512_HEX}`)).toBe(true);
    expect(isDigest(EMPTY_SHA256)).toBe(true);
  });

  it('is false for a sha512-length encoding labelled sha256 and the reverse', () => {
    expect(isDigest(`sha256:${SHA512_HEX}`)).toBe(false);
    expect(isDigest(`sha512:${SHA256_HEX}`)).toBe(false);
  });

  it('is false for anything else, without throwing', () => {
    for (const value of ['', 'latest', 'sha256', `md5:${'a'.repeat(32)}`, `sha256:${'G'.repeat(64)}`]) {
      expect(isDigest(value)).toBe(false);
    }
  });
});

describe('digestOf', () => {
  it('matches node:crypto sha256 for bytes and strings', () => {
    const bytes = new Uint8Array([0, 1, 2, 3, 254, 255]);
    expect(digestOf(bytes)).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    expect(digestOf('hello world')).toBe(`sha256:${createHash('sha256').update('hello world').digest('hex')}`);
    expect(digestOf(new Uint8Array(0))).toBe(EMPTY_SHA256);
    expect(digestOf('')).toBe(EMPTY_SHA256);
  });

  it('matches node:crypto sha512 and gives a parseable sha512 digest', () => {
    const value = digestOf('hello world', 'sha512');
    expect(value).toBe(`sha512:${createHash('sha512').update('hello world').digest('hex')}`);
    expect(parseDigest(value).algorithm).toBe('sha512');
  });

  it('hashes only the view of a Uint8Array, not its whole backing buffer', () => {
    const backing = Buffer.from('xxhelloyy');
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, 5);
    expect(digestOf(view)).toBe(digestOf('hello'));
  });

  it('always yields a string parseDigest accepts', () => {
    for (const input of ['', 'a', 'b'.repeat(100_000)]) {
      expect(isDigest(digestOf(input))).toBe(true);
      expect(parseDigest(digestOf(input)).value).toBe(digestOf(input));
    }
  });
});

describe('createDigester', () => {
  it('defaults to sha256 and agrees with digestOf', () => {
    const hash = createDigester();
    hash.update('abc');
    expect(`sha256:${hash.digest('hex')}`).toBe(digestOf('abc'));
    const sha512 = createDigester('sha512');
    sha512.update('abc');
    expect(`sha512:${sha512.digest('hex')}`).toBe(digestOf('abc', 'sha512'));
  });
});

/**
 * The grammars of distribution-spec v1.1 "Pulling manifests" (the `<name>` and `<reference>`
 * definitions):
 *   <name>  [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *   <tag>   [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 */
import { describe, expect, it } from 'vitest';
import { DigestInvalidError, NameInvalidError, TagInvalidError } from './errors.js';
import {
  MAX_REPOSITORY_NAME_LENGTH,
  assertRepositoryName,
  compareTagsLexically,
  isTag,
  parseReference,
  referenceToString,
} from './names.js';

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

describe('assertRepositoryName', () => {
  // distribution-spec v1.1 "Pulling manifests": <name> grammar.
  it.each([
    'a',
    '0',
    'library/ubuntu',
    'a.b',
    'a_b',
    'a__b',
    'a-b',
    'a--b',
    'a---------b',
    'a.b/c_d',
    'a.b-c__d/e-f.g_h',
    'a/b/c/d/e/f/g/h',
    'ghcr.io/owner/repo',
    '123/456',
    'x1y2z3',
  ])('accepts %j (distribution-spec v1.1 <name> grammar)', (name) => {
    expect(assertRepositoryName(name)).toBe(name);
  });

  // distribution-spec v1.1 "Pulling manifests": anything outside the <name> grammar is NAME_INVALID.
  it.each([
    '',
    '.',
    '..',
    '../a',
    'a/..',
    'a/../b',
    'a/./b',
    'A',
    'library/Ubuntu',
    'a/',
    '/a',
    'a//b',
    'a___b',
    'a..b',
    'a._b',
    'a_-b',
    'a%2Fb',
    'a%2fb',
    '-a',
    'a-',
    '_a',
    'a_',
    '.a',
    'a.',
    'a b',
    'a\\b',
    'a:b',
    'a@b',
    'a\nb',
    'a\0',
    'ä',
    'a/-b',
    'a/b-',
  ])('refuses %j with NameInvalidError (distribution-spec v1.1 <name> grammar)', (name) => {
    let caught: unknown;
    try {
      assertRepositoryName(name);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NameInvalidError);
    expect((caught as NameInvalidError).kind).toBe('NameInvalid');
  });

  // distribution-spec v1.1 "Pulling manifests": clients limit host + name to 255 characters.
  it('accepts 255 characters and refuses 256', () => {
    expect(MAX_REPOSITORY_NAME_LENGTH).toBe(255);
    const atLimit = 'a'.repeat(255);
    expect(assertRepositoryName(atLimit)).toBe(atLimit);
    expect(() => assertRepositoryName('a'.repeat(256))).toThrow(NameInvalidError);
    const deepAtLimit = Array.from({ length: 128 }, () => 'a').join('/'); // 255 characters
    expect(deepAtLimit).toHaveLength(255);
    expect(assertRepositoryName(deepAtLimit)).toBe(deepAtLimit);
    expect(() => assertRepositoryName(`${deepAtLimit}b`)).toThrow(NameInvalidError);
  });

  it('answers a pathological name quickly and with a bounded message', () => {
    const name = `${'a-'.repeat(5000)}!`;
    try {
      assertRepositoryName(name);
      expect.unreachable('assertRepositoryName should throw');
    } catch (err) {
      expect(err).toBeInstanceOf(NameInvalidError);
      expect((err as Error).message.length).toBeLessThan(400);
    }
  });
});

// distribution-spec v1.1 "Listing Tags": "lexical order (i.e. case-insensitive alphanumeric order)".
describe('compareTagsLexically', () => {
  it('orders tags case-insensitively, and tags differing only in case by their bytes', () => {
    const tags = ['ZZ', 'b', 'latest', 'Beta', 'a-b', '1.10', 'B', 'alpha', 'z_last', '1.0', 'Charlie', 'a', 'c', '1.9'];
    expect([...tags].sort(compareTagsLexically)).toEqual(['1.0', '1.10', '1.9', 'a', 'a-b', 'alpha', 'B', 'b', 'Beta', 'c', 'Charlie', 'latest', 'z_last', 'ZZ']);
  });

  it('is a total order: equal only for the same tag', () => {
    expect(compareTagsLexically('v1', 'v1')).toBe(0);
    expect(compareTagsLexically('V1', 'v1')).toBeLessThan(0);
    expect(compareTagsLexically('v1', 'V1')).toBeGreaterThan(0);
  });
});

describe('isTag', () => {
  // distribution-spec v1.1 "Pulling manifests": <reference> as a tag.
  it.each(['latest', 'v1.2.3', '1', '_', '_private', 'A', 'UPPER_lower-1.0', 'a.', 'a-', 'a..b', 'sha256'])(
    'accepts %j (distribution-spec v1.1 tag grammar)',
    (tag) => {
      expect(isTag(tag)).toBe(true);
    },
  );

  it.each(['', '.a', '-a', '.', '-', 'a/b', 'a:b', 'a b', 'a@b', 'a+b', 'ä', 'a\n', '../a'])(
    'refuses %j (distribution-spec v1.1 tag grammar)',
    (tag) => {
      expect(isTag(tag)).toBe(false);
    },
  );

  // distribution-spec v1.1 "Pulling manifests": a tag is at most 128 characters.
  it('accepts 128 characters and refuses 129', () => {
    expect(isTag('a'.repeat(128))).toBe(true);
    expect(isTag(`_${'.'.repeat(127)}`)).toBe(true);
    expect(isTag('a'.repeat(129))).toBe(false);
  });
});

describe('parseReference', () => {
  // distribution-spec v1.1 "Pulling manifests": <reference> is a tag or a digest.
  it('parses a tag', () => {
    const reference = parseReference('v1.0');
    expect(reference).toEqual({ kind: 'tag', tag: 'v1.0' });
    expect(referenceToString(reference)).toBe('v1.0');
  });

  it('parses a digest', () => {
    const reference = parseReference(DIGEST);
    expect(reference.kind).toBe('digest');
    if (reference.kind !== 'digest') return;
    expect(reference.digest).toEqual({ algorithm: 'sha256', encoded: DIGEST.slice(7), value: DIGEST });
    expect(referenceToString(reference)).toBe(DIGEST);
  });

  it('treats "sha256" without a colon as a tag', () => {
    expect(parseReference('sha256')).toEqual({ kind: 'tag', tag: 'sha256' });
  });

  // image-spec descriptor.md "Digests": anything with ':' is a digest and must be a valid one.
  it.each(['sha256:abc', `md5:${'a'.repeat(32)}`, `sha256:${'A'.repeat(64)}`, 'latest:1', ':', 'sha256:../x'])(
    'refuses the invalid digest %j with DigestInvalidError',
    (value) => {
      expect(() => parseReference(value)).toThrow(DigestInvalidError);
    },
  );

  // distribution-spec v1.1 tag grammar: an invalid tag is refused with TagInvalidError.
  it.each(['', '.hidden', '-x', 'a/b', 'a'.repeat(129), 'a b', '%2F'])('refuses the invalid tag %j with TagInvalidError', (value) => {
    let caught: unknown;
    try {
      parseReference(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TagInvalidError);
    expect((caught as TagInvalidError).kind).toBe('TagInvalid');
  });

  it('accepts a tag of exactly 128 characters', () => {
    expect(parseReference('t'.repeat(128))).toEqual({ kind: 'tag', tag: 't'.repeat(128) });
  });
});

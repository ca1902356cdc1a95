import { NameInvalidError, TagInvalidError } from './errors.js';
import { parseDigest, type Digest } from './digest.js';

/**
 * Grammars from distribution-spec v1.1 "Pulling manifests" / "Definitions":
 *   <name>      [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *   <reference> a tag [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} or a digest
 * A name is checked before it reaches storage, so `..`, `%2F` and other path tricks never
 * become file paths or SQL values.
 */
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
export const REPOSITORY_NAME_PATTERN = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
export const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Distribution and most clients cap a repository name at 255 characters. */
export const MAX_REPOSITORY_NAME_LENGTH = 255;

export function assertRepositoryName(name: string): string {
  if (name.length === 0 || name.length > MAX_REPOSITORY_NAME_LENGTH || !REPOSITORY_NAME_PATTERN.test(name)) {
    throw new NameInvalidError(`invalid repository name: ${name.slice(0, 300)}`);
  }
  return name;
}

export function isTag(value: string): boolean {
  return TAG_PATTERN.test(value);
}

/**
 * The order of a tag list (distribution-spec v1.1 "Listing Tags": "lexical order (i.e.
 * case-insensitive alphanumeric order)"): by the names with ASCII letters lowered, then by the
 * names themselves, so tags that differ only in case keep one fixed order and `last` pages
 * exactly. It is the order of `ORDER BY lower(name), name` in the C collation, which lowers
 * ASCII letters only; tags are ASCII, and so is every `last` that names a tag.
 */
export function compareTagsLexically(a: string, b: string): number {
  return compareCodeUnits(lowerAscii(a), lowerAscii(b)) || compareCodeUnits(a, b);
}

const lowerAscii = (value: string) => value.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
const compareCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

/** A manifest reference is a digest when it contains ':' (tags cannot), otherwise a tag. */
export function parseReference(value: string): Reference {
  if (value.includes(':')) return { kind: 'digest', digest: parseDigest(value) };
  if (!isTag(value)) throw new TagInvalidError(`invalid tag: ${value.slice(0, 200)}`);
  return { kind: 'tag', tag: value };
}

export function referenceToString(reference: Reference): string {
  return reference.kind === 'tag' ? reference.tag : reference.digest.value;
}


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


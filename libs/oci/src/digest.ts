import { createHash, type Hash } from 'node:crypto';
import { DigestInvalidError } from './errors.js';

/**
 * Digests as image-spec "descriptor.md#digests" defines them: `algorithm ":" encoded`.
 * sha256 is what every client sends and is required; sha512 is registered in the spec and
 * accepted; any other algorithm is refused with DIGEST_INVALID rather than stored unverifiable.
 */
export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
// Registered algorithms use lower-case hex only (image-spec descriptor.md "Registered algorithms").
const DIGEST_PATTERN = /^(sha256|sha512):([a-f0-9]+)$/;
// The general grammar, used only to tell "malformed" from "unsupported algorithm" in messages.
const GENERAL_DIGEST_PATTERN = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly encoded: string;
  /** The canonical string form, `sha256:<hex>`. */
  readonly value: string;
}

export function parseDigest(value: string): Digest {
  const match = DIGEST_PATTERN.exec(value);
  if (!match) {
    const reason = GENERAL_DIGEST_PATTERN.test(value) ? 'unsupported digest algorithm' : 'malformed digest';
    throw new DigestInvalidError(`${reason}: ${truncate(value)}`);
  }
  const algorithm = match[1] as DigestAlgorithm;
  const encoded = match[2]!;
  if (encoded.length !== ENCODED_LENGTH[algorithm]) {
    throw new DigestInvalidError(`${algorithm} digest must have ${ENCODED_LENGTH[algorithm]} hex characters`);
  }
  return { algorithm, encoded, value };
}

export function isDigest(value: string): boolean {
  const match = DIGEST_PATTERN.exec(value);
  return match !== null && match[2]!.length === ENCODED_LENGTH[match[1] as DigestAlgorithm];
}

export function createDigester(algorithm: DigestAlgorithm = 'sha256'): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function truncate(value: string): string {
  return value.length > 80 ? `${value.slice(0, 80)}…` : value;
}

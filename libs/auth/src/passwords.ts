/**
 * Password hashing with argon2id (RFC 9106) through @node-rs/argon2, whose prebuilt binaries
 * need no compiler. Parameters are the library's defaults (OWASP's minimum for argon2id: 19 MiB,
 * two passes); each hash string carries its own, so they can be raised later without breaking
 * what is stored.
 */
import { randomBytes } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

/** The library's `Algorithm.Argon2id`, an ambient const enum that isolated modules cannot read. */
const ARGON2ID = 2;

export function hashPassword(password: string): Promise<string> {
  return hash(password, { algorithm: ARGON2ID });
}

/** False for a wrong password and for a stored hash that is not one. */
export async function verifyPassword(storedHash: string, password: string): Promise<boolean> {
  try {
    return await verify(storedHash, password);
  } catch {
    return false;
  }
}

/** A new random password: 32 bytes, base64url (43 characters), safe in a shell and a URL. */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}

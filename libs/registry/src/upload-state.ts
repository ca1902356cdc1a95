import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { NotedDigest } from '@meridian/blobstore';
import { BlobUploadUnknownError } from '@meridian/oci';

/**
 * Upload-session state carried in the Location URL, HMAC-signed (Distribution's handlers/hmac.go),
 * so any gateway of the region can continue a session without a lookup, and a session started in
 * one repository cannot be continued through another. An open session has no record anywhere
 * else (only its bytes, once it has had a chunk): the token is the session.
 */
export interface UploadState {
  repository: string;
  id: string;
  startedAt: string;
  /**
   * What the session's last chunk left its bytes hashing to, for the closing PUT (BlobStore
   * `appendChunk`): signed with the rest, so a client can neither forge it nor carry it to
   * another session, and trusted by the store only for the file and size it was taken of.
   */
  noted?: NotedDigest;
}

/**
 * The longest a token may stay good, in every gateway of every region: the most
 * MERIDIAN_UPLOAD_MAX_IDLE_HOURS may be. The record of an ended session is kept this long (and a
 * margin for clocks), so that it outlives every token of that session whatever idle limit the
 * gateway that issued the token had.
 */
export const UPLOAD_MAX_IDLE_BOUND_MS = 168 * 3600_000;

export interface UploadStateSignerOptions {
  /**
   * How long a token stays good after it was issued (MERIDIAN_UPLOAD_MAX_IDLE_HOURS; 24 hours
   * by default, at most UPLOAD_MAX_IDLE_BOUND_MS): a session idle that long is purged, and since
   * nothing else records an open session, refusing its token is what ends it. The expiry is
   * signed into the token, so the gateway that checks it keeps to the limit of the one that
   * issued it.
   */
  maxIdleMs?: number;
  /** The clock, in ms since the epoch; tests move it. */
  now?: () => number;
}

export class UploadStateSigner {
  private readonly key: KeyObject;
  private readonly maxIdleMs: number;
  private readonly now: () => number;
  /** A token is issued afresh once the one in use is this old, so a session in use never expires. */
  private readonly renewAfterMs: number;
  /**
   * The token each state that `verify` returned came in, and when it was issued. The state never
   * changes during a session, so a PATCH or status answer names its session with the very token
   * it came with, and skips an HMAC, unless that token is due to be renewed.
   */
  private readonly verified = new WeakMap<UploadState, { token: string; issuedAt: number }>();

  constructor(secret: string, options: UploadStateSignerOptions = {}) {
    // Imported once, not with every HMAC.
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
    this.maxIdleMs = options.maxIdleMs ?? 24 * 3600_000;
    if (this.maxIdleMs > UPLOAD_MAX_IDLE_BOUND_MS) throw new RangeError(`an upload token may last at most ${UPLOAD_MAX_IDLE_BOUND_MS} ms`);
    this.now = options.now ?? Date.now;
    this.renewAfterMs = Math.min(60_000, this.maxIdleMs / 10);
  }

  sign(state: UploadState): string {
    const now = this.now();
    const known = this.verified.get(state);
    if (known && now - known.issuedAt < this.renewAfterMs) return known.token;
    const fields: unknown[] = [state.repository, state.id, state.startedAt, now, now + this.maxIdleMs];
    if (state.noted) fields.push(state.noted.size, state.noted.digest, state.noted.file);
    const payload = Buffer.from(JSON.stringify(fields)).toString('base64url');
    const token = `${payload}.${this.mac(payload)}`;
    this.verified.set(state, { token, issuedAt: now });
    return token;
  }

  /**
   * The state, if `token` is authentic, names this repository and session, and has not expired
   * (the expiry its issuer signed into it); else BLOB_UPLOAD_UNKNOWN.
   */
  verify(token: string | undefined, repository: string, id: string): UploadState {
    const unknown = () => new BlobUploadUnknownError(`upload ${id.slice(0, 80)} is unknown, expired, or its state is not authentic`);
    if (!token) throw unknown();
    const [payload, mac] = token.split('.');
    if (!payload || !mac) throw unknown();
    const expected = Buffer.from(this.mac(payload));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw unknown();
    let fields: unknown;
    try {
      fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw unknown();
    }
    if (!Array.isArray(fields) || fields[0] !== repository || fields[1] !== id || typeof fields[2] !== 'string') throw unknown();
    // A token without an issue time and expiry is of the release whose ended sessions left no
    // record: accepting it could replay one of those (a closing PUT linking its blob again), so
    // a session open across the upgrade starts again, as every client does on a 404.
    const [issuedAt, expiresAt] = [fields[3], fields[4]];
    if (typeof issuedAt !== 'number' || typeof expiresAt !== 'number') throw unknown();
    if (!(this.now() <= expiresAt && expiresAt - issuedAt <= UPLOAD_MAX_IDLE_BOUND_MS)) throw unknown();
    const state: UploadState = { repository, id, startedAt: fields[2] };
    if (fields.length > 5) {
      // Signed by a gateway of the region, so well formed unless that gateway had a bug.
      const [size, digest, file] = fields.slice(5);
      if (!(Number.isSafeInteger(size) && typeof digest === 'string' && typeof file === 'string')) throw unknown();
      state.noted = { size: size as number, digest, file };
    }
    this.verified.set(state, { token, issuedAt });
    return state;
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

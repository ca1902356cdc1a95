import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { BlobUploadUnknownError } from '@meridian/oci';

/**
 * Upload-session state carried in the Location URL, HMAC-signed (Distribution's handlers/hmac.go),
 * so any gateway of the region can continue a session without a lookup, and a session started in
 * one repository cannot be continued through another.
 */
export interface UploadState {
  repository: string;
  id: string;
  startedAt: string;
}

export class UploadStateSigner {
  private readonly key: KeyObject;
  /**
   * The token each state that `verify` returned came in. The state never changes during a
   * session, so a PATCH or status answer names its session with the very token it came with,
   * and skips an HMAC.
   */
  private readonly verified = new WeakMap<UploadState, string>();

  constructor(secret: string) {
    // Imported once, not with every HMAC.
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  sign(state: UploadState): string {
    const known = this.verified.get(state);
    if (known) return known;
    const payload = Buffer.from(JSON.stringify([state.repository, state.id, state.startedAt])).toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  /** The state, if `token` is authentic and names this repository and session; else BLOB_UPLOAD_UNKNOWN. */
  verify(token: string | undefined, repository: string, id: string): UploadState {
    const unknown = () => new BlobUploadUnknownError(`upload ${id.slice(0, 80)} is unknown or its state is not authentic`);
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
    const state = { repository, id, startedAt: fields[2] };
    this.verified.set(state, token);
    return state;
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

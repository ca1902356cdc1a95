/**
 * Signed blob URLs: how a region lets a client fetch one blob without credentials, for a short
 * while, at an address the client was redirected to. A client following a redirect to another
 * host does not resend its `Authorization` (Go's HTTP client, and so skopeo, containerd and
 * docker, drop it across hosts), so registries that redirect blob GETs redirect to a URL that
 * carries its own short-lived proof instead (Azure Container Registry, Distribution with S3 or
 * CloudFront). Here the proof is an HMAC-SHA256 over the method, repository, digest and expiry,
 * with a key derived from a secret every gateway of the region shares.
 *
 * Transport-free: the caller takes the two query parameters off the URL and puts them on.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** The HKDF `info` of the key: the region's secret signs upload state too, with a key of its own. */
const KEY_INFO = 'meridian signed blob url v1';
/** The only method signed: a signed URL reads a blob (a HEAD checks the same signature). */
const SIGNED_METHOD = 'GET';
/** Long enough for a client to follow the redirect at once; a URL seen later is of no use. */
export const BLOB_URL_LIFETIME_SECONDS = 60;

/** The query parameters of a signed blob URL. */
export const BLOB_URL_EXPIRES_PARAMETER = 'expires';
export const BLOB_URL_SIGNATURE_PARAMETER = 'signature';

export interface BlobUrlSignature {
  /** Unix seconds after which the URL no longer reads the blob. */
  expires: string;
  /** base64url of the HMAC-SHA256. */
  signature: string;
}

const EXPIRES = /^\d{1,12}$/;
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;

export class BlobUrlSigner {
  private readonly key: Buffer;

  constructor(
    regionSecret: string,
    private readonly lifetimeSeconds = BLOB_URL_LIFETIME_SECONDS,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', regionSecret, '', KEY_INFO, 32));
  }

  /** The signature that lets `repository`'s blob `digest` be read until `lifetimeSeconds` from `now`. */
  sign(repository: string, digest: string, now = Date.now()): BlobUrlSignature {
    const expires = String(Math.floor(now / 1000) + this.lifetimeSeconds);
    return { expires, signature: this.mac(repository, digest, expires).toString('base64url') };
  }

  /**
   * Whether `signature` was made by `sign` for exactly this repository and digest and has not
   * expired. Anything malformed is simply not valid: the caller answers it as it answers no
   * credentials, and learns (and tells) nothing about why.
   */
  verifies(repository: string, digest: string, expires: string | null | undefined, signature: string | null | undefined, now = Date.now()): boolean {
    if (!expires || !signature || !EXPIRES.test(expires) || !SIGNATURE.test(signature)) return false;
    if (Number(expires) * 1000 <= now) return false;
    return timingSafeEqual(this.mac(repository, digest, expires), Buffer.from(signature, 'base64url'));
  }

  // Repository names and digests hold no newline (distribution-spec's grammars), so the fields
  // of the signed string cannot run into each other.
  private mac(repository: string, digest: string, expires: string): Buffer {
    return createHmac('sha256', this.key).update(`${SIGNED_METHOD}\n${repository}\n${digest}\n${expires}`).digest();
  }
}

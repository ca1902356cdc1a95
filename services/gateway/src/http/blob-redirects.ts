import type { Request } from 'express';
import { BLOB_URL_EXPIRES_PARAMETER, BLOB_URL_SIGNATURE_PARAMETER, type BlobUrlSigner } from '@meridian/auth';
import { BLOB_REDIRECT_HEADER } from '@meridian/proto/cluster-http';

/**
 * Where a blob GET is redirected, as a path and query on this gateway (the router makes it
 * absolute at the region's registered address); undefined: the bytes are served here.
 */
export type BlobRedirects = (req: Request, repository: string, digest: string) => string | undefined;

/**
 * The router proxies each blob GET with BLOB_REDIRECT_HEADER, asking for a redirect to the region
 * rather than the bytes, which would then pass through it. The header is believed only from a
 * trusted proxy (express's `trust proxy`, from MERIDIAN_TRUSTED_PROXIES). With auth on (`signer`
 * set) the redirect carries a short-lived signature for this repository and digest, since the
 * client will not resend its credentials to another host; the access guard accepts it in their
 * place. With auth off the redirect is to the same path and query.
 */
export function createBlobRedirects(signer: BlobUrlSigner | undefined): BlobRedirects {
  return (req, repository, digest) => {
    if (req.headers[BLOB_REDIRECT_HEADER] === undefined) return undefined;
    const trusted = req.app.get('trust proxy fn') as ((address: string | undefined, hop: number) => boolean) | undefined;
    if (!trusted?.(req.socket.remoteAddress, 0)) return undefined;
    if (!signer) return req.url;
    const queryStart = req.url.indexOf('?');
    const query = queryStart === -1 ? new URLSearchParams() : new URLSearchParams(req.url.slice(queryStart + 1));
    const { expires, signature } = signer.sign(repository, digest);
    query.set(BLOB_URL_EXPIRES_PARAMETER, expires);
    query.set(BLOB_URL_SIGNATURE_PARAMETER, signature);
    return `${queryStart === -1 ? req.url : req.url.slice(0, queryStart)}?${query}`;
  };
}

/** The signature a blob request's URL carries (BlobUrlSigner's query parameters); undefined: none. */
export function blobUrlSignature(req: Request): { expires: string | null; signature: string } | undefined {
  const queryStart = req.url.indexOf('?');
  if (queryStart === -1) return undefined;
  const query = new URLSearchParams(req.url.slice(queryStart + 1));
  const signature = query.get(BLOB_URL_SIGNATURE_PARAMETER);
  return signature === null ? undefined : { expires: query.get(BLOB_URL_EXPIRES_PARAMETER), signature };
}

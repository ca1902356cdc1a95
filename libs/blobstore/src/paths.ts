import type { Digest } from '@meridian/oci';

/**
 * The on-disk layout, in one place (Distribution's storage/paths.go does the same):
 *
 *   blobs/<algorithm>/<first two hex>/<hex>   verified blob content, named by its digest
 *   uploads/<id>/                              placed by a session's first chunk: made as
 *                                              staging/<uuid>/ holding its empty
 *                                              data.<holder>, then renamed here; gone once
 *                                              the session is closed, cancelled or purged
 *   uploads/<id>/data                          bytes of an upload session so far; its
 *                                              modification time is the session's last
 *                                              activity, which purging goes by
 *   uploads/<id>/data.<holder>                 the same bytes while one request (of any
 *                                              process of the region) holds the session: it
 *                                              renamed `data` so, and renames it back when
 *                                              done; <holder> is "<claimed at, ms base 36>.
 *                                              <pid>.<process start>.<host hash>.<boot and
 *                                              pid namespace hash>" (see BlobStore)
 *   uploads/<id>/sha256                        a digest note the store's earlier version
 *                                              left beside a session's bytes; no longer
 *                                              written (the digest travels in the signed
 *                                              upload state), only removed where found
 *   staging/<uuid>                             a monolithic write, or the whole-blob PUT that
 *                                              closes an upload session with no chunk, being
 *                                              hashed; renamed into blobs/ only once its
 *                                              digest is verified. Or, as a folder, a new
 *                                              session's folder about to be renamed into
 *                                              uploads/ (see above)
 *   .write-probe-<uuid>                        a few bytes a readiness check writes at the root
 *                                              and removes at once (FilesystemDriver)
 *
 * Nothing else is ever written. Every name below comes from a parsed digest or a server-made
 * upload id, never from a request path.
 */
export const paths = {
  blob: (digest: Digest) => `blobs/${digest.algorithm}/${digest.encoded.slice(0, 2)}/${digest.encoded}`,
  uploadsRoot: 'uploads',
  uploadDir: (id: string) => `uploads/${assertUploadId(id)}`,
  uploadData: (id: string) => `uploads/${assertUploadId(id)}/data`,
  uploadClaimed: (id: string, holder: string) => `uploads/${assertUploadId(id)}/${UPLOAD_CLAIM_PREFIX}${holder}`,
  stagingRoot: 'staging',
  staging: (id: string) => `staging/${assertUploadId(id)}`,
} as const;

const UPLOAD_ID_PATTERN = /^[a-f0-9-]{36}$/;

/** What the name of a session's data file starts with while a request holds it. */
export const UPLOAD_CLAIM_PREFIX = 'data.';

export function isUploadId(id: string): boolean {
  return UPLOAD_ID_PATTERN.test(id);
}

function assertUploadId(id: string): string {
  if (!isUploadId(id)) throw new Error(`not an upload id: ${id}`);
  return id;
}

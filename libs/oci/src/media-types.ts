/** Media types from image-spec "media-types.md" and Docker's schema2 specification. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type ManifestMediaType =
  | typeof MediaType.OciManifest
  | typeof MediaType.OciIndex
  | typeof MediaType.DockerManifest
  | typeof MediaType.DockerManifestList;

export const MANIFEST_MEDIA_TYPES: readonly ManifestMediaType[] = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
];

/** Image manifests reference blobs; indexes reference other manifests. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

export function isManifestMediaType(mediaType: string): mediaType is ManifestMediaType {
  return (MANIFEST_MEDIA_TYPES as readonly string[]).includes(mediaType);
}

export function isSchema1MediaType(mediaType: string): boolean {
  return mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed;
}

/**
 * Layers a registry must not require to be present when they carry `urls`: image-spec
 * layer.md's non-distributable layers (deprecated, still pushed) and Docker's foreign layers
 * (Windows base layers). Exact types only: a look-alike such as `application/vnd.acme.foreign.x`
 * does not skip the blob check.
 */
const FOREIGN_LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

export function isForeignLayerMediaType(mediaType: string): boolean {
  return FOREIGN_LAYER_MEDIA_TYPES.has(mediaType);
}

/** Strips parameters (`; charset=utf-8`) and case from a Content-Type header value. */
export function essenceOf(contentType: string | undefined): string {
  if (!contentType) return '';
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/**
 * Accept negotiation for manifest GET/HEAD (distribution-spec "Pulling manifests": clients
 * SHOULD send Accept). A missing header accepts anything. The header may list types across
 * several comma-separated values. As RFC 9110 §12.5.1 says, the most specific range that
 * matches decides: `type;q=0, * / *` refuses `type` and accepts the rest.
 */
export function acceptsMediaType(acceptHeaders: readonly string[], mediaType: string): boolean {
  if (acceptHeaders.length === 0) return true;
  const [type] = mediaType.split('/');
  let sawAny = false;
  // 3: the exact type, 2: `type/*`, 1: `*/*`; 0: nothing matched yet.
  let bestSpecificity = 0;
  let bestAcceptable = false;
  for (const header of acceptHeaders) {
    for (const part of header.split(',')) {
      const essence = essenceOf(part);
      if (essence === '') continue;
      sawAny = true;
      const specificity = essence === mediaType ? 3 : essence === `${type}/*` ? 2 : essence === '*/*' ? 1 : 0;
      if (specificity === 0 || specificity < bestSpecificity) continue;
      // RFC 9110 §12.4.2: a weight of 0 means "not acceptable". Among equally specific ranges
      // naming the type, one that accepts it wins.
      const acceptable = !/;\s*q=0(?:\.0{0,3})?\s*(?:;|$)/i.test(part);
      if (specificity > bestSpecificity) bestAcceptable = acceptable;
      else bestAcceptable ||= acceptable;
      bestSpecificity = specificity;
    }
  }
  return sawAny ? bestAcceptable : true;
}

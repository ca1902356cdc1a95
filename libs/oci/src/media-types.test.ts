/**
 * Media types of image-spec "media-types.md" and Docker schema2, and the Accept negotiation of
 * distribution-spec v1.1 "Pulling manifests".
 */
import { describe, expect, it } from 'vitest';
import {
  MANIFEST_MEDIA_TYPES,
  MediaType,
  acceptsMediaType,
  essenceOf,
  isForeignLayerMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1MediaType,
} from './media-types.js';

describe('MediaType', () => {
  // image-spec media-types.md and Docker "Image Manifest Version 2, Schema 2".
  it('holds the registered media type strings', () => {
    expect(MediaType).toEqual({
      OciManifest: 'application/vnd.oci.image.manifest.v1+json',
      OciIndex: 'application/vnd.oci.image.index.v1+json',
      OciConfig: 'application/vnd.oci.image.config.v1+json',
      OciEmpty: 'application/vnd.oci.empty.v1+json',
      DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
      DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
      DockerConfig: 'application/vnd.docker.container.image.v1+json',
      DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
      DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
    });
  });

  it('classifies manifests, indexes, schema1 and foreign layers', () => {
    expect([...MANIFEST_MEDIA_TYPES].sort()).toEqual(
      [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList].sort(),
    );
    for (const type of MANIFEST_MEDIA_TYPES) expect(isManifestMediaType(type)).toBe(true);
    for (const type of [MediaType.OciConfig, MediaType.OciEmpty, MediaType.DockerSchema1, 'application/json', '']) {
      expect(isManifestMediaType(type)).toBe(false);
    }
    expect(isIndexMediaType(MediaType.OciIndex)).toBe(true);
    expect(isIndexMediaType(MediaType.DockerManifestList)).toBe(true);
    expect(isIndexMediaType(MediaType.OciManifest)).toBe(false);
    expect(isIndexMediaType(MediaType.DockerManifest)).toBe(false);
    expect(isSchema1MediaType(MediaType.DockerSchema1)).toBe(true);
    expect(isSchema1MediaType(MediaType.DockerSchema1Signed)).toBe(true);
    expect(isSchema1MediaType(MediaType.DockerManifest)).toBe(false);
    expect(isForeignLayerMediaType('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip')).toBe(true);
    expect(isForeignLayerMediaType('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip')).toBe(true);
    expect(isForeignLayerMediaType('application/vnd.oci.image.layer.v1.tar+gzip')).toBe(false);
    expect(isForeignLayerMediaType('application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe(false);
    // Look-alikes are not foreign layers: they must not skip the blob-presence check.
    expect(isForeignLayerMediaType('application/vnd.acme.foreign.anything')).toBe(false);
    expect(isForeignLayerMediaType('application/vnd.acme.nondistributable.v1.tar')).toBe(false);
  });
});

describe('essenceOf', () => {
  // RFC 9110 §8.3.1: type and subtype are case-insensitive; parameters follow ';'.
  it.each([
    [undefined, ''],
    ['', ''],
    ['application/json', 'application/json'],
    ['application/json; charset=utf-8', 'application/json'],
    ['application/json;charset=utf-8', 'application/json'],
    ['  Application/Vnd.OCI.Image.Manifest.v1+JSON  ; q=0.9', 'application/vnd.oci.image.manifest.v1+json'],
    ['TEXT/PLAIN', 'text/plain'],
    ['; charset=utf-8', ''],
  ])('essenceOf(%j) is %j', (input, expected) => {
    expect(essenceOf(input)).toBe(expected);
  });
});

describe('acceptsMediaType (distribution-spec v1.1 "Pulling manifests": Accept)', () => {
  const oci = MediaType.OciManifest;

  it('accepts anything without an Accept header', () => {
    expect(acceptsMediaType([], oci)).toBe(true);
  });

  it('accepts anything when the Accept headers are empty', () => {
    expect(acceptsMediaType([''], oci)).toBe(true);
    expect(acceptsMediaType([' , ', ''], oci)).toBe(true);
  });

  it('accepts an exact match, with parameters and in another case', () => {
    expect(acceptsMediaType([oci], oci)).toBe(true);
    expect(acceptsMediaType([`${oci}; q=0.5`], oci)).toBe(true);
    expect(acceptsMediaType([oci.toUpperCase()], oci)).toBe(true);
  });

  it('accepts wildcards */* and application/*', () => {
    expect(acceptsMediaType(['*/*'], oci)).toBe(true);
    expect(acceptsMediaType(['application/*'], oci)).toBe(true);
    expect(acceptsMediaType([`${MediaType.DockerManifest}, */*;q=0.1`], oci)).toBe(true);
  });

  it('refuses when only other types are listed', () => {
    expect(acceptsMediaType([MediaType.DockerManifest], oci)).toBe(false);
    expect(acceptsMediaType(['application/json'], oci)).toBe(false);
    expect(acceptsMediaType(['text/*'], oci)).toBe(false);
    expect(acceptsMediaType([`${MediaType.OciIndex}, ${MediaType.DockerManifestList}`], oci)).toBe(false);
    // a prefix or a superstring is not a match
    expect(acceptsMediaType([`${oci}x`], oci)).toBe(false);
    expect(acceptsMediaType(['application/vnd.oci.image.manifest.v1'], oci)).toBe(false);
  });

  it('reads comma-separated lists across several header values', () => {
    const headers = [`${MediaType.DockerManifest}, ${MediaType.DockerManifestList}`, `${MediaType.OciIndex},${oci}`];
    expect(acceptsMediaType(headers, oci)).toBe(true);
    expect(acceptsMediaType(headers, MediaType.DockerManifestList)).toBe(true);
    expect(acceptsMediaType(headers.slice(0, 1), oci)).toBe(false);
  });

  // RFC 9110 §12.4.2: "a value of 0 means not acceptable".
  it('refuses a type listed with q=0 (RFC 9110 §12.4.2)', () => {
    expect(acceptsMediaType([`${oci};q=0`, MediaType.DockerManifest], oci)).toBe(false);
  });

  // RFC 9110 §12.5.1: "Media ranges can be overridden by more specific media ranges".
  it('lets the most specific range decide, so q=0 on a type is not undone by a wildcard', () => {
    expect(acceptsMediaType([`${oci};q=0, */*`], oci)).toBe(false);
    expect(acceptsMediaType([`${oci};q=0`, 'application/*'], oci)).toBe(false);
    expect(acceptsMediaType([`${oci};q=0, */*`], MediaType.DockerManifest)).toBe(true);
    expect(acceptsMediaType(['application/*;q=0, */*'], oci)).toBe(false);
    expect(acceptsMediaType([`application/*;q=0, ${oci}`], oci)).toBe(true);
    expect(acceptsMediaType(['*/*;q=0'], oci)).toBe(false);
  });
});

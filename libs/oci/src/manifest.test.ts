/**
 * parseManifest over the four formats a registry stores: OCI image manifest (image-spec v1.1
 * manifest.md), OCI image index (image-index.md), Docker schema2 manifest and manifest list.
 */
import { describe, expect, it } from 'vitest';
import { digestOf } from './digest.js';
import { ManifestInvalidError } from './errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type ParsedManifest } from './manifest.js';
import { MediaType } from './media-types.js';

const CONFIG_DIGEST = digestOf('config');
const LAYER1_DIGEST = digestOf('layer-1');
const LAYER2_DIGEST = digestOf('layer-2');
const FOREIGN_DIGEST = digestOf('foreign');
const CHILD1_DIGEST = digestOf('child-1');
const CHILD2_DIGEST = digestOf('child-2');
const SUBJECT_DIGEST = digestOf('subject');

const LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const DOCKER_FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
const OCI_NONDISTRIBUTABLE_LAYER = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';

type Json = Record<string, unknown>;

function encode(document: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(document));
}

function parse(document: unknown, contentType: string | undefined): ParsedManifest {
  return parseManifest(encode(document), contentType);
}

function expectInvalid(document: unknown, contentType: string | undefined, message?: RegExp): ManifestInvalidError {
  return expectInvalidBytes(encode(document), contentType, message);
}

function expectInvalidBytes(body: Uint8Array, contentType: string | undefined, message?: RegExp): ManifestInvalidError {
  let caught: unknown;
  try {
    parseManifest(body, contentType);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ManifestInvalidError);
  expect((caught as ManifestInvalidError).kind).toBe('ManifestInvalid');
  if (message) expect((caught as Error).message).toMatch(message);
  return caught as ManifestInvalidError;
}

function ociManifest(overrides: Json = {}): Json {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: CONFIG_DIGEST, size: 6 },
    layers: [
      { mediaType: LAYER_TAR_GZIP, digest: LAYER1_DIGEST, size: 7 },
      { mediaType: LAYER_TAR_GZIP, digest: LAYER2_DIGEST, size: 7 },
    ],
    ...overrides,
  };
}

function ociIndex(overrides: Json = {}): Json {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      {
        mediaType: MediaType.OciManifest,
        digest: CHILD1_DIGEST,
        size: 100,
        platform: { architecture: 'amd64', os: 'linux' },
      },
      {
        mediaType: MediaType.OciManifest,
        digest: CHILD2_DIGEST,
        size: 200,
        platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
      },
    ],
    ...overrides,
  };
}

function dockerManifest(overrides: Json = {}): Json {
  return {
    schemaVersion: 2,
    mediaType: MediaType.DockerManifest,
    config: { mediaType: MediaType.DockerConfig, digest: CONFIG_DIGEST, size: 6 },
    layers: [{ mediaType: DOCKER_LAYER, digest: LAYER1_DIGEST, size: 7 }],
    ...overrides,
  };
}

function dockerManifestList(overrides: Json = {}): Json {
  return {
    schemaVersion: 2,
    mediaType: MediaType.DockerManifestList,
    manifests: [
      {
        mediaType: MediaType.DockerManifest,
        digest: CHILD1_DIGEST,
        size: 100,
        platform: { architecture: 'amd64', os: 'linux' },
      },
      {
        mediaType: MediaType.DockerManifest,
        digest: CHILD2_DIGEST,
        size: 200,
        platform: { architecture: 'ppc64le', os: 'linux' },
      },
    ],
    ...overrides,
  };
}

const subject = { mediaType: MediaType.OciManifest, digest: SUBJECT_DIGEST, size: 321 };

describe('parseManifest: OCI image manifest (image-spec v1.1 manifest.md)', () => {
  it('returns the media type, config and layers as blob references, and the config media type as artifactType', () => {
    const parsed = parse(ociManifest(), MediaType.OciManifest);
    expect(parsed.mediaType).toBe(MediaType.OciManifest);
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST, LAYER1_DIGEST, LAYER2_DIGEST]);
    expect(parsed.blobReferences[0]).toEqual({ mediaType: MediaType.OciConfig, digest: CONFIG_DIGEST, size: 6 });
    expect(parsed.manifestReferences).toEqual([]);
    // distribution-spec v1.1 "Listing Referrers": without artifactType, the config's media type.
    expect(parsed.artifactType).toBe(MediaType.OciConfig);
    expect(parsed).not.toHaveProperty('subject');
    expect(parsed).not.toHaveProperty('annotations');
  });

  it('accepts a manifest without layers', () => {
    const parsed = parse(ociManifest({ layers: [] }), MediaType.OciManifest);
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST]);
  });

  // image-spec manifest.md "subject", "artifactType", "annotations".
  it('returns subject, explicit artifactType and annotations', () => {
    const parsed = parse(
      ociManifest({
        artifactType: 'application/vnd.example.sbom.v1+json',
        subject,
        annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
      }),
      MediaType.OciManifest,
    );
    expect(parsed.subject).toEqual(subject);
    expect(parsed.artifactType).toBe('application/vnd.example.sbom.v1+json');
    expect(parsed.annotations).toEqual({ 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' });
  });

  // image-spec layer.md / manifest.md: non-distributable layers carry `urls` and need not be in the registry.
  it('leaves foreign and non-distributable layers that carry urls out of the blob references', () => {
    const parsed = parse(
      ociManifest({
        layers: [
          { mediaType: LAYER_TAR_GZIP, digest: LAYER1_DIGEST, size: 7 },
          { mediaType: OCI_NONDISTRIBUTABLE_LAYER, digest: FOREIGN_DIGEST, size: 9, urls: ['https://example.com/l'] },
        ],
      }),
      MediaType.OciManifest,
    );
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST, LAYER1_DIGEST]);
  });

  it('keeps a non-distributable layer without urls as a blob reference (it must then be pushed)', () => {
    const parsed = parse(
      ociManifest({
        layers: [
          { mediaType: OCI_NONDISTRIBUTABLE_LAYER, digest: FOREIGN_DIGEST, size: 9 },
          { mediaType: OCI_NONDISTRIBUTABLE_LAYER, digest: LAYER2_DIGEST, size: 7, urls: [] },
        ],
      }),
      MediaType.OciManifest,
    );
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST, FOREIGN_DIGEST, LAYER2_DIGEST]);
  });

  it('keeps a regular layer that happens to carry urls', () => {
    const parsed = parse(
      ociManifest({ layers: [{ mediaType: LAYER_TAR_GZIP, digest: LAYER1_DIGEST, size: 7, urls: ['https://example.com/x'] }] }),
      MediaType.OciManifest,
    );
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST, LAYER1_DIGEST]);
  });

  // image-spec manifest.md "Guidelines for Artifact Usage": the empty config requires artifactType.
  it('refuses the empty config media type without artifactType', () => {
    const document = ociManifest({
      config: { mediaType: MediaType.OciEmpty, digest: digestOf('{}'), size: 2, data: 'e30=' },
    });
    expectInvalid(document, MediaType.OciManifest, /artifactType/);
  });

  it('accepts the empty config media type with artifactType, and reports that artifactType', () => {
    const parsed = parse(
      ociManifest({
        artifactType: 'application/vnd.example.signature.v1',
        config: { mediaType: MediaType.OciEmpty, digest: digestOf('{}'), size: 2, data: 'e30=' },
        layers: [{ mediaType: MediaType.OciEmpty, digest: digestOf('{}'), size: 2 }],
        subject,
      }),
      MediaType.OciManifest,
    );
    expect(parsed.artifactType).toBe('application/vnd.example.signature.v1');
    expect(parsed.subject).toEqual(subject);
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([digestOf('{}'), digestOf('{}')]);
  });

  // image-spec manifest.md "config": REQUIRED.
  it('refuses a manifest without config', () => {
    const document = ociManifest();
    delete document.config;
    expectInvalid(document, MediaType.OciManifest, /config/);
  });

  it('refuses a manifest without layers', () => {
    const document = ociManifest();
    delete document.layers;
    expectInvalid(document, MediaType.OciManifest, /layers/);
  });

  // image-spec manifest.md "schemaVersion": MUST be 2.
  it.each([3, '2', undefined, null])('refuses schemaVersion %j', (schemaVersion) => {
    expectInvalid(ociManifest({ schemaVersion }), MediaType.OciManifest);
  });

  it('reports which field is wrong in the error detail', () => {
    const err = expectInvalid(
      ociManifest({ layers: [{ mediaType: LAYER_TAR_GZIP, digest: 'sha256:nope', size: 7 }] }),
      MediaType.OciManifest,
    );
    expect(err.message).toContain('layers.0.digest');
    expect(err.detail).toEqual({ issues: [expect.objectContaining({ path: 'layers.0.digest' })] });
  });
});

describe('parseManifest: descriptors (image-spec v1.1 descriptor.md)', () => {
  function withLayer(layer: Json): Json {
    return ociManifest({ layers: [layer] });
  }

  // descriptor.md "digest": a valid digest.
  it.each([
    'sha256:abc',
    `sha256:${'A'.repeat(64)}`,
    `md5:${'a'.repeat(32)}`,
    'sha256:../../etc/passwd',
    '',
    42,
  ])('refuses the layer digest %j', (digest) => {
    expectInvalid(withLayer({ mediaType: LAYER_TAR_GZIP, digest, size: 7 }), MediaType.OciManifest);
  });

  it('refuses a bad config digest', () => {
    expectInvalid(ociManifest({ config: { mediaType: MediaType.OciConfig, digest: 'sha256:1', size: 6 } }), MediaType.OciManifest);
  });

  it('accepts a sha512 descriptor digest', () => {
    const sha512 = digestOf('layer', 'sha512');
    const parsed = parse(withLayer({ mediaType: LAYER_TAR_GZIP, digest: sha512, size: 5 }), MediaType.OciManifest);
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST, sha512]);
  });

  // descriptor.md "size": the number of bytes, an int64 (non-negative integer).
  it.each([-1, 1.5, '7', null, Number.MAX_SAFE_INTEGER + 2])('refuses the layer size %j', (size) => {
    expectInvalid(withLayer({ mediaType: LAYER_TAR_GZIP, digest: LAYER1_DIGEST, size }), MediaType.OciManifest);
  });

  it('accepts size 0', () => {
    const parsed = parse(withLayer({ mediaType: LAYER_TAR_GZIP, digest: LAYER1_DIGEST, size: 0 }), MediaType.OciManifest);
    expect(parsed.blobReferences[1]?.size).toBe(0);
  });

  it('refuses a descriptor without size or mediaType', () => {
    expectInvalid(withLayer({ mediaType: LAYER_TAR_GZIP, digest: LAYER1_DIGEST }), MediaType.OciManifest);
    expectInvalid(withLayer({ digest: LAYER1_DIGEST, size: 7 }), MediaType.OciManifest);
  });

  // descriptor.md "mediaType": MUST comply with RFC 6838.
  it.each(['', 'notamediatype', 'a/b/c', 'application/', '/json', 'application/json; charset=utf-8'])(
    'refuses the descriptor media type %j',
    (mediaType) => {
      expectInvalid(withLayer({ mediaType, digest: LAYER1_DIGEST, size: 7 }), MediaType.OciManifest);
    },
  );

  it('refuses annotations that are not string to string', () => {
    expectInvalid(ociManifest({ annotations: { a: 1 } }), MediaType.OciManifest);
    expectInvalid(ociManifest({ annotations: ['a'] }), MediaType.OciManifest);
  });

  it('refuses a subject that is not a descriptor', () => {
    expectInvalid(ociManifest({ subject: { digest: SUBJECT_DIGEST } }), MediaType.OciManifest);
  });

  // The spec lets annotations hold any string, but a registry must be able to store what it
  // accepts: Postgres text and jsonb hold neither NUL nor an unpaired surrogate.
  it.each(['a\u0000b', '\ud800', 'x\udc00'])('refuses an annotation holding %j, as a key or a value', (bad) => {
    expectInvalid(ociManifest({ annotations: { key: bad } }), MediaType.OciManifest, /NUL|surrogate/);
    expectInvalid(ociManifest({ annotations: { [bad]: 'value' } }), MediaType.OciManifest, /annotations\..*key/);
  });

  it('accepts annotations with characters outside the BMP (paired surrogates)', () => {
    const parsed = parse(ociManifest({ annotations: { note: 'ship 🚢 it' } }), MediaType.OciManifest);
    expect(parsed.annotations).toEqual({ note: 'ship 🚢 it' });
  });

  // descriptor.md "data": base64 (RFC 4648), and the decoded bytes MUST be the content named.
  it('accepts embedded data that decodes to the content the descriptor names', () => {
    const bytes = Buffer.from('config');
    parse(ociManifest({ config: { mediaType: MediaType.OciConfig, digest: CONFIG_DIGEST, size: 6, data: bytes.toString('base64') } }), MediaType.OciManifest);
  });

  it.each([
    ['not base64', '!!!not base64***', 6],
    ['base64 of other bytes', Buffer.from('CONFIG').toString('base64'), 6],
    ['a length other than size', Buffer.from('config').toString('base64'), 7],
    ['unpadded base64', Buffer.from('config!').toString('base64').replace(/=+$/, ''), 7],
  ])('refuses embedded data that is %s', (_what, data, size) => {
    expectInvalid(ociManifest({ config: { mediaType: MediaType.OciConfig, digest: CONFIG_DIGEST, size, data } }), MediaType.OciManifest, /data/);
  });

  // descriptor.md "urls": RFC 3986, SHOULD be http or https; Distribution takes only http(s)
  // without a fragment for the foreign layers these point at.
  it.each(['javascript:alert(1)', 'not a url', 'ftp://example.com/layer', 'https://example.com/layer#part', '/relative'])(
    'refuses the url %j',
    (url) => {
      expectInvalid(withLayer({ mediaType: OCI_NONDISTRIBUTABLE_LAYER, digest: FOREIGN_DIGEST, size: 9, urls: [url] }), MediaType.OciManifest);
    },
  );

  it('keeps a look-alike of a foreign layer type as a blob reference even with urls', () => {
    const layer = { mediaType: 'application/vnd.acme.foreign.anything', digest: FOREIGN_DIGEST, size: 9, urls: ['https://example.com/l'] };
    const parsed = parse(withLayer(layer), MediaType.OciManifest);
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST, FOREIGN_DIGEST]);
  });
});

describe('parseManifest: nesting depth', () => {
  // Deep nesting costs JSON.parse long enough to stall the event loop; no manifest needs it.
  it('refuses JSON nested deeper than 64 levels, before parsing it, even under an unknown key', () => {
    const deep = `{"schemaVersion":2,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expectInvalidBytes(Buffer.from(deep), MediaType.OciManifest, /deeper than 64/);
  });

  it('counts only structure: brackets inside strings do not count', () => {
    const parsed = parse(ociManifest({ annotations: { brackets: '[[[[{{{{'.repeat(100) } }), MediaType.OciManifest);
    expect(parsed.annotations?.brackets).toHaveLength(800);
    const nested = JSON.parse('[]') as unknown[];
    let inner = nested;
    for (let i = 0; i < 60; i++) inner.push((inner = []));
    parse(ociManifest({ annotations: undefined, x: nested }), MediaType.OciManifest);
  });
});

describe('parseManifest: OCI image index (image-spec v1.1 image-index.md)', () => {
  it('returns the child manifests as manifest references and no blob references', () => {
    const parsed = parse(ociIndex(), MediaType.OciIndex);
    expect(parsed.mediaType).toBe(MediaType.OciIndex);
    expect(parsed.blobReferences).toEqual([]);
    expect(parsed.manifestReferences.map((d) => d.digest)).toEqual([CHILD1_DIGEST, CHILD2_DIGEST]);
    expect(parsed.manifestReferences[1]?.platform).toEqual({ architecture: 'arm64', os: 'linux', variant: 'v8' });
    expect(parsed).not.toHaveProperty('artifactType');
    expect(parsed).not.toHaveProperty('subject');
  });

  // image-index.md: platform is OPTIONAL in an OCI index.
  it('accepts OCI index entries without platform', () => {
    const parsed = parse(
      ociIndex({ manifests: [{ mediaType: MediaType.OciManifest, digest: CHILD1_DIGEST, size: 100 }] }),
      MediaType.OciIndex,
    );
    expect(parsed.manifestReferences).toHaveLength(1);
  });

  it('accepts an empty index', () => {
    expect(parse(ociIndex({ manifests: [] }), MediaType.OciIndex).manifestReferences).toEqual([]);
  });

  // image-index.md "artifactType", "subject", "annotations".
  it('returns artifactType, subject and annotations', () => {
    const parsed = parse(
      ociIndex({ artifactType: 'application/vnd.example.bundle', subject, annotations: { k: 'v' } }),
      MediaType.OciIndex,
    );
    expect(parsed.artifactType).toBe('application/vnd.example.bundle');
    expect(parsed.subject).toEqual(subject);
    expect(parsed.annotations).toEqual({ k: 'v' });
  });

  it('refuses an index without manifests', () => {
    const document = ociIndex();
    delete document.manifests;
    expectInvalid(document, MediaType.OciIndex, /manifests/);
  });

  it('refuses an index entry with a bad digest or size', () => {
    expectInvalid(ociIndex({ manifests: [{ mediaType: MediaType.OciManifest, digest: 'sha256:x', size: 1 }] }), MediaType.OciIndex);
    expectInvalid(ociIndex({ manifests: [{ mediaType: MediaType.OciManifest, digest: CHILD1_DIGEST, size: -5 }] }), MediaType.OciIndex);
  });

  it('refuses a platform without os or architecture', () => {
    expectInvalid(
      ociIndex({ manifests: [{ mediaType: MediaType.OciManifest, digest: CHILD1_DIGEST, size: 1, platform: { os: 'linux' } }] }),
      MediaType.OciIndex,
    );
  });
});

describe('parseManifest: Docker schema2 manifest and manifest list', () => {
  // Docker image manifest v2 schema 2 "Image Manifest Field Descriptions".
  it('parses a schema2 manifest: config and layers, config media type as artifactType', () => {
    const parsed = parse(dockerManifest(), MediaType.DockerManifest);
    expect(parsed.mediaType).toBe(MediaType.DockerManifest);
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST, LAYER1_DIGEST]);
    expect(parsed.manifestReferences).toEqual([]);
    expect(parsed.artifactType).toBe(MediaType.DockerConfig);
  });

  // Docker schema2: foreign layers (Windows base layers) carry urls and are not pushed.
  it('leaves Docker foreign layers with urls out of the blob references', () => {
    const parsed = parse(
      dockerManifest({
        layers: [
          { mediaType: DOCKER_FOREIGN_LAYER, digest: FOREIGN_DIGEST, size: 9, urls: ['https://mcr.microsoft.com/x'] },
          { mediaType: DOCKER_LAYER, digest: LAYER1_DIGEST, size: 7 },
        ],
      }),
      MediaType.DockerManifest,
    );
    expect(parsed.blobReferences.map((d) => d.digest)).toEqual([CONFIG_DIGEST, LAYER1_DIGEST]);
  });

  // Docker schema2 "Manifest List Field Descriptions": platform is required for each entry.
  it('parses a manifest list into manifest references', () => {
    const parsed = parse(dockerManifestList(), MediaType.DockerManifestList);
    expect(parsed.mediaType).toBe(MediaType.DockerManifestList);
    expect(parsed.blobReferences).toEqual([]);
    expect(parsed.manifestReferences.map((d) => d.digest)).toEqual([CHILD1_DIGEST, CHILD2_DIGEST]);
  });

  it('refuses a manifest list entry without platform', () => {
    const document = dockerManifestList({
      manifests: [
        { mediaType: MediaType.DockerManifest, digest: CHILD1_DIGEST, size: 100, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: MediaType.DockerManifest, digest: CHILD2_DIGEST, size: 200 },
      ],
    });
    expectInvalid(document, MediaType.DockerManifestList, /platform/);
  });

  it('refuses a schema2 manifest without config', () => {
    const document = dockerManifest();
    delete document.config;
    expectInvalid(document, MediaType.DockerManifest);
  });
});

describe('parseManifest: media type resolution (image-spec manifest.md "mediaType", distribution-spec "Pushing manifests")', () => {
  it('accepts a Content-Type with parameters and in another case', () => {
    expect(parse(ociManifest(), `${MediaType.OciManifest}; charset=utf-8`).mediaType).toBe(MediaType.OciManifest);
    expect(parse(ociManifest(), MediaType.OciManifest.toUpperCase()).mediaType).toBe(MediaType.OciManifest);
  });

  it('takes the media type from the Content-Type when the body has none', () => {
    const document = ociManifest();
    delete document.mediaType;
    expect(parse(document, MediaType.OciManifest).mediaType).toBe(MediaType.OciManifest);
    const list = dockerManifestList();
    delete list.mediaType;
    expect(parse(list, MediaType.DockerManifestList).mediaType).toBe(MediaType.DockerManifestList);
  });

  // image-spec manifest.md "mediaType": when used, it MUST match the Content-Type the manifest is pushed with.
  it.each([
    [MediaType.OciIndex, ociManifest()],
    [MediaType.DockerManifest, ociManifest()],
    [MediaType.OciManifest, ociIndex()],
    [MediaType.OciManifest, dockerManifest()],
    [MediaType.DockerManifest, dockerManifestList()],
  ])('refuses Content-Type %s with a body declaring another media type', (contentType, document) => {
    expectInvalid(document, contentType, /does not match/);
  });

  it('refuses a body mediaType that is not a string', () => {
    expectInvalid(ociManifest({ mediaType: 7 }), MediaType.OciManifest);
    expectInvalid(ociManifest({ mediaType: null }), undefined);
  });

  // distribution-spec leaves Docker schema1 out; it is refused however it is announced.
  it('refuses Docker schema1 by signed Content-Type', () => {
    expectInvalid({ schemaVersion: 1, name: 'a', tag: 'b', fsLayers: [], history: [] }, MediaType.DockerSchema1Signed, /schema1/);
    expectInvalid(ociManifest(), 'application/vnd.docker.distribution.manifest.v1+prettyjws', /schema1/);
  });

  it('refuses Docker schema1 by unsigned Content-Type', () => {
    expectInvalid({ schemaVersion: 1, name: 'a', tag: 'b', fsLayers: [] }, MediaType.DockerSchema1, /schema1/);
  });

  it('refuses Docker schema1 by schemaVersion 1, whatever the Content-Type', () => {
    const schema1 = { schemaVersion: 1, name: 'a', tag: 'b', architecture: 'amd64', fsLayers: [], history: [] };
    expectInvalid(schema1, undefined, /schema1/);
    expectInvalid(schema1, 'application/json', /schema1/);
    expectInvalid(schema1, MediaType.OciManifest, /schema1/);
  });

  it('refuses a body that declares a schema1 media type', () => {
    expectInvalid(ociManifest({ mediaType: MediaType.DockerSchema1Signed }), undefined, /schema1/);
  });

  // distribution-spec v1.1 "Pushing manifests": the registry stores the manifest types it supports, others are MANIFEST_INVALID.
  it.each(['application/vnd.example+json', 'text/plain', MediaType.OciConfig, 'application/vnd.oci.image.layer.v1.tar'])(
    'refuses the unknown Content-Type %s',
    (contentType) => {
      expectInvalid(ociManifest(), contentType, /unsupported/);
    },
  );

  it('accepts a generic Content-Type when the body names its media type', () => {
    expect(parse(ociManifest(), 'application/json').mediaType).toBe(MediaType.OciManifest);
    expect(parse(ociIndex(), 'application/json').mediaType).toBe(MediaType.OciIndex);
    expect(parse(dockerManifest(), 'application/json; charset=utf-8').mediaType).toBe(MediaType.DockerManifest);
    expect(parse(dockerManifestList(), 'application/octet-stream').mediaType).toBe(MediaType.DockerManifestList);
  });

  it('refuses a generic Content-Type with a body naming an unknown media type', () => {
    expectInvalid(ociManifest({ mediaType: 'application/vnd.example+json' }), 'application/json', /unsupported/);
    expectInvalid(ociManifest({ mediaType: 'application/vnd.example+json' }), undefined, /unsupported/);
  });

  it('takes the body mediaType when there is no Content-Type', () => {
    expect(parse(dockerManifest(), undefined).mediaType).toBe(MediaType.DockerManifest);
    expect(parse(dockerManifestList(), '').mediaType).toBe(MediaType.DockerManifestList);
  });

  it('infers an OCI index or manifest from the shape when neither header nor body names the type', () => {
    const index = ociIndex();
    delete index.mediaType;
    const manifest = ociManifest();
    delete manifest.mediaType;
    expect(parse(index, undefined).mediaType).toBe(MediaType.OciIndex);
    expect(parse(manifest, undefined).mediaType).toBe(MediaType.OciManifest);
    expect(parse(manifest, 'application/json').mediaType).toBe(MediaType.OciManifest);
    expect(parse(manifest, undefined).blobReferences).toHaveLength(3);
  });

  it('refuses a typeless document of no recognisable shape', () => {
    expectInvalid({ schemaVersion: 2 }, undefined, /unsupported/);
    expectInvalid({ schemaVersion: 2, config: null }, undefined);
  });
});

describe('parseManifest: not a JSON object', () => {
  it.each(['', '{', 'not json', '{"schemaVersion":2,}', '\u0000'])('refuses %j as invalid JSON', (text) => {
    expectInvalidBytes(new TextEncoder().encode(text), MediaType.OciManifest, /JSON/);
  });

  it.each(['[]', '[{"schemaVersion":2}]', 'null', '2', '"manifest"', 'true'])('refuses the JSON value %s', (text) => {
    expectInvalidBytes(new TextEncoder().encode(text), MediaType.OciManifest, /JSON object/);
  });

  it('reads only the view of the body it is given', () => {
    const json = JSON.stringify(ociManifest());
    const backing = Buffer.from(`garbage${json}garbage`);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 'garbage'.length, Buffer.byteLength(json));
    expect(parseManifest(view, MediaType.OciManifest).mediaType).toBe(MediaType.OciManifest);
  });

  it('exposes the 4 MiB limit distribution-spec "Pushing manifests" requires registries to accept', () => {
    expect(MAX_MANIFEST_BYTES).toBe(4 * 1024 * 1024);
  });
});

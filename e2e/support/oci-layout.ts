/**
 * Builds and reads OCI image layouts on disk (image-spec `image-layout.md`):
 *
 *   DIR/oci-layout              {"imageLayoutVersion":"1.0.0"}
 *   DIR/index.json              an image index whose entries carry `org.opencontainers.image.ref.name`
 *   DIR/blobs/sha256/<hex>      every blob, named by the sha256 of its bytes
 *
 * skopeo's `oci:DIR:TAG` transport reads and writes exactly this, so an e2e test can push content
 * it built itself (no network) and compare what it gets back digest by digest.
 *
 * Media types are spelled out here rather than imported from `@meridian/oci`: the test must not
 * share constants with the code under test, or a typo there would be invisible here.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { pack, type Header, type Pack } from 'tar-stream';

const gzipAsync = promisify(gzip);

export const OCI_INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** image-spec annotations.md: the tag of an entry in a layout's index.json. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Every digest that makes up one image manifest, so a test can compare a round trip. */
export interface ImageDigests {
  manifestDigest: string;
  configDigest: string;
  /** Compressed layer digests, in manifest order. */
  layerDigests: string[];
  /** sha256 of each uncompressed layer tar, as the config's rootfs.diff_ids lists them. */
  diffIds: string[];
  platform: Platform;
}

export interface SingleImageLayout extends ImageDigests {
  dir: string;
  tag: string;
}

export interface MultiPlatformLayout {
  dir: string;
  tag: string;
  indexDigest: string;
  /** One per platform, in the index's order. */
  images: ImageDigests[];
}

export interface SingleImageOptions {
  tag: string;
  /** Number of layers; each is a gzip-compressed tar holding a random payload and a small text file. */
  layers: number;
  /** Bytes of random payload per layer (before tar and gzip). */
  layerSize: number;
  platform?: Platform;
}

export interface MultiPlatformOptions {
  tag: string;
  platforms: Platform[];
  layers?: number;
  layerSize?: number;
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Serialises a manifest, index or config the way the layout stores it. Pretty-printed with a
 * trailing newline on purpose: a registry that re-serialises JSON instead of storing the client's
 * bytes (distribution-spec "Pushing manifests" requires the exact bytes back) changes the digest.
 */
function encodeJson(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes the layout skeleton: `oci-layout` and the blobs directory. */
async function initLayout(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

async function writeBlob(dir: string, bytes: Buffer): Promise<string> {
  const digest = sha256Digest(bytes);
  await writeFile(blobPath(dir, digest), bytes);
  return digest;
}

export function blobPath(dir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  if (!algorithm || !hex) throw new Error(`not a digest: ${digest}`);
  return path.join(dir, 'blobs', algorithm, hex);
}

async function writeIndexJson(dir: string, entry: Descriptor): Promise<void> {
  const index = { schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: [entry] };
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
}

/** A real tar archive (ustar, via tar-stream) holding `payload.bin` and `layer.txt`. */
async function buildLayerTar(name: string, payload: Buffer): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const finished = new Promise<void>((resolve, reject) => {
    archive.on('end', resolve);
    archive.on('error', reject);
  });
  // A fixed mtime keeps the tar a pure function of its payload.
  const mtime = new Date('2024-01-01T00:00:00Z');
  const note = Buffer.from(`meridian e2e layer ${name}\n`);
  await addEntry(archive, { name: 'data/', type: 'directory', mode: 0o755, mtime });
  await addEntry(archive, { name: 'data/payload.bin', size: payload.length, mode: 0o644, mtime }, payload);
  await addEntry(archive, { name: 'data/layer.txt', size: note.length, mode: 0o644, mtime }, note);
  archive.finalize();
  await finished;
  return Buffer.concat(chunks);
}

function addEntry(archive: Pack, header: Partial<Header> & Pick<Header, 'name'>, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    archive.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
}

/** Writes layers, config and manifest blobs of one image; index.json is left to the caller. */
async function writeImageBlobs(
  dir: string,
  opts: { name: string; layers: number; layerSize: number; platform: Platform },
): Promise<ImageDigests & { manifestSize: number }> {
  const layerDescriptors: Descriptor[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < opts.layers; i++) {
    // Random payloads make every layer unique, so no blob is already present from an earlier run
    // or another image and each push really uploads it.
    const tarBytes = await buildLayerTar(`${opts.name}-${i}`, randomBytes(opts.layerSize));
    diffIds.push(sha256Digest(tarBytes));
    const compressed = await gzipAsync(tarBytes);
    const digest = await writeBlob(dir, compressed);
    layerDescriptors.push({ mediaType: OCI_LAYER_GZIP_MEDIA_TYPE, digest, size: compressed.length });
  }

  // image-spec config.md: rootfs.diff_ids are digests of the *uncompressed* layers.
  const config = {
    created: '2024-01-01T00:00:00Z',
    architecture: opts.platform.architecture,
    os: opts.platform.os,
    ...(opts.platform.variant ? { variant: opts.platform.variant } : {}),
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/true'], Labels: { 'meridian.e2e': opts.name } },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({
      created: '2024-01-01T00:00:00Z',
      created_by: `meridian e2e: layer ${i} of ${opts.name}`,
    })),
  };
  const configBytes = encodeJson(config);
  const configDigest = await writeBlob(dir, configBytes);

  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: { mediaType: OCI_CONFIG_MEDIA_TYPE, digest: configDigest, size: configBytes.length },
    layers: layerDescriptors,
    annotations: { 'org.opencontainers.image.title': `meridian e2e ${opts.name}` },
  };
  const manifestBytes = encodeJson(manifest);
  const manifestDigest = await writeBlob(dir, manifestBytes);

  return {
    manifestDigest,
    manifestSize: manifestBytes.length,
    configDigest,
    layerDigests: layerDescriptors.map((d) => d.digest),
    diffIds,
    platform: opts.platform,
  };
}

/** An image layout holding one single-platform image manifest tagged `tag`. */
export async function writeSingleImageLayout(dir: string, opts: SingleImageOptions): Promise<SingleImageLayout> {
  await initLayout(dir);
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const { manifestSize, ...image } = await writeImageBlobs(dir, {
    name: `single-${opts.tag}`,
    layers: opts.layers,
    layerSize: opts.layerSize,
    platform,
  });
  await writeIndexJson(dir, {
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    digest: image.manifestDigest,
    size: manifestSize,
    annotations: { [REF_NAME_ANNOTATION]: opts.tag },
  });
  return { dir, tag: opts.tag, ...image };
}

/** An image layout holding an image index tagged `tag`, with one image manifest per platform. */
export async function writeMultiPlatformLayout(dir: string, opts: MultiPlatformOptions): Promise<MultiPlatformLayout> {
  await initLayout(dir);
  const images: ImageDigests[] = [];
  const entries: Descriptor[] = [];
  for (const platform of opts.platforms) {
    const { manifestSize, ...image } = await writeImageBlobs(dir, {
      name: `multi-${opts.tag}-${platform.os}-${platform.architecture}${platform.variant ?? ''}`,
      layers: opts.layers ?? 2,
      layerSize: opts.layerSize ?? 64 * 1024,
      platform,
    });
    images.push(image);
    entries.push({ mediaType: OCI_MANIFEST_MEDIA_TYPE, digest: image.manifestDigest, size: manifestSize, platform });
  }
  const indexBytes = encodeJson({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: entries });
  const indexDigest = await writeBlob(dir, indexBytes);
  await writeIndexJson(dir, {
    mediaType: OCI_INDEX_MEDIA_TYPE,
    digest: indexDigest,
    size: indexBytes.length,
    annotations: { [REF_NAME_ANNOTATION]: opts.tag },
  });
  return { dir, tag: opts.tag, indexDigest, images };
}

/** What a layout holds under one tag, as read back from disk. */
export type ReadLayoutResult =
  | { kind: 'image'; image: ImageDigests }
  | { kind: 'index'; indexDigest: string; images: ImageDigests[] };

/**
 * Reads the image or index tagged `tag` in a layout (typically one skopeo wrote) and every blob it
 * references, checking that each blob file's bytes hash to its name and that descriptor sizes
 * match, so a truncated or altered blob fails here rather than passing a digest-only comparison.
 */
export async function readLayout(dir: string, tag: string): Promise<ReadLayoutResult> {
  const layoutFile = JSON.parse(await readFile(path.join(dir, 'oci-layout'), 'utf8')) as { imageLayoutVersion?: string };
  if (layoutFile.imageLayoutVersion !== '1.0.0') {
    throw new Error(`${dir}/oci-layout: unexpected imageLayoutVersion ${layoutFile.imageLayoutVersion}`);
  }
  const top = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  const entry = top.manifests?.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag);
  if (!entry) throw new Error(`${dir}/index.json has no entry tagged ${tag}`);

  if (entry.mediaType === OCI_INDEX_MEDIA_TYPE) {
    const index = (await readJsonBlob(dir, entry)) as { mediaType?: string; manifests: Descriptor[] };
    if (index.mediaType !== OCI_INDEX_MEDIA_TYPE) throw new Error(`index ${entry.digest} has mediaType ${index.mediaType}`);
    const images: ImageDigests[] = [];
    for (const child of index.manifests) {
      if (!child.platform) throw new Error(`index ${entry.digest}: entry ${child.digest} has no platform`);
      images.push(await readImage(dir, child, child.platform));
    }
    return { kind: 'index', indexDigest: entry.digest, images };
  }
  return { kind: 'image', image: await readImage(dir, entry) };
}

async function readImage(dir: string, descriptor: Descriptor, indexPlatform?: Platform): Promise<ImageDigests> {
  if (descriptor.mediaType !== OCI_MANIFEST_MEDIA_TYPE) {
    throw new Error(`${descriptor.digest}: expected an OCI image manifest, got ${descriptor.mediaType}`);
  }
  const manifest = (await readJsonBlob(dir, descriptor)) as { config: Descriptor; layers: Descriptor[] };
  const config = (await readJsonBlob(dir, manifest.config)) as {
    os: string;
    architecture: string;
    variant?: string;
    rootfs: { diff_ids: string[] };
  };
  for (const layer of manifest.layers) await readBlob(dir, layer);
  const platform: Platform = indexPlatform ?? {
    os: config.os,
    architecture: config.architecture,
    ...(config.variant ? { variant: config.variant } : {}),
  };
  return {
    manifestDigest: descriptor.digest,
    configDigest: manifest.config.digest,
    layerDigests: manifest.layers.map((l) => l.digest),
    diffIds: config.rootfs.diff_ids,
    platform,
  };
}

async function readBlob(dir: string, descriptor: Descriptor): Promise<Buffer> {
  const bytes = await readFile(blobPath(dir, descriptor.digest));
  const actual = sha256Digest(bytes);
  if (actual !== descriptor.digest) throw new Error(`blob ${descriptor.digest} in ${dir} hashes to ${actual}`);
  if (bytes.length !== descriptor.size) {
    throw new Error(`blob ${descriptor.digest} in ${dir} is ${bytes.length} bytes, descriptor says ${descriptor.size}`);
  }
  return bytes;
}

async function readJsonBlob(dir: string, descriptor: Descriptor): Promise<unknown> {
  return JSON.parse((await readBlob(dir, descriptor)).toString('utf8'));
}

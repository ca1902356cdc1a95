import { createHash, randomBytes, randomFillSync, type Hash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';

/**
 * The bytes the scenarios push and pull. Blob files are written to disk once and hashed while
 * written, so both registries and nginx get exactly the same bytes and a 256 MiB blob is never
 * held in memory.
 */

export interface BlobFile {
  /** `sha256:<hex>` */
  digest: string;
  size: number;
  path: string;
  /** Path under the fixture root, which is also the path nginx serves it at. */
  relativePath: string;
  /** The bytes themselves, kept for small blobs so pushes do not read the disk. */
  bytes?: Buffer;
  /** The sha256 state after all but the last `variantTailBytes` bytes (see `freshVariant`). */
  headHash: Hash;
}

/** How many trailing bytes `freshVariant` replaces. */
export const variantTailBytes = 16;

/**
 * A blob no registry has seen: `file`'s bytes with the last 16 replaced by `tail`. Its digest
 * comes from the saved hash state of the head, so making one costs microseconds, while the
 * registry still receives, hashes and stores every byte. Push scenarios send a new variant
 * every time: re-pushing a blob the registry holds would let it skip the write.
 */
export function freshVariant(file: BlobFile, tail: Buffer): BlobFile & { tail: Buffer } {
  if (tail.length !== variantTailBytes) throw new Error(`a variant tail has ${variantTailBytes} bytes`);
  const hex = file.headHash.copy().update(tail).digest('hex');
  return { ...file, digest: `sha256:${hex}`, tail };
}

const writeChunkBytes = 4 * 2 ** 20;

/** Writes `count` random files of `size` bytes under rootDir/subdir, named by their hex digest. */
export async function writeBlobFiles(
  rootDir: string,
  subdir: string,
  count: number,
  size: number,
  opts: { keepInMemory: boolean },
): Promise<BlobFile[]> {
  const dir = path.join(rootDir, subdir);
  await mkdir(dir, { recursive: true });
  const chunk = Buffer.allocUnsafe(Math.min(writeChunkBytes, size));
  const files: BlobFile[] = [];
  for (let i = 0; i < count; i++) {
    const tempPath = path.join(dir, `writing-${i}`);
    const hash = createHash('sha256');
    const handle = await open(tempPath, 'w');
    let headHash: Hash | undefined;
    try {
      const headBytes = size - variantTailBytes;
      for (let written = 0; written < size; ) {
        const length = Math.min(chunk.length, size - written);
        const piece = chunk.subarray(0, length);
        randomFillSync(piece);
        if (!headHash && written + length >= headBytes) {
          hash.update(piece.subarray(0, headBytes - written));
          headHash = hash.copy();
          hash.update(piece.subarray(headBytes - written));
        } else {
          hash.update(piece);
        }
        await handle.write(piece, 0, length);
        written += length;
      }
    } finally {
      await handle.close();
    }
    if (!headHash) throw new Error(`blob files need at least ${variantTailBytes} bytes`);
    const hex = hash.digest('hex');
    const finalPath = path.join(dir, hex);
    await rename(tempPath, finalPath);
    const file: BlobFile = { digest: `sha256:${hex}`, size, path: finalPath, relativePath: `${subdir}/${hex}`, headHash };
    if (opts.keepInMemory) file.bytes = await readFile(finalPath);
    files.push(file);
  }
  return files;
}

export interface InMemoryBlob {
  digest: string;
  size: number;
  bytes: Buffer;
}

export function inMemoryBlob(bytes: Buffer): InMemoryBlob {
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, bytes };
}

export const ociManifestMediaType = 'application/vnd.oci.image.manifest.v1+json';
export const ociConfigMediaType = 'application/vnd.oci.image.config.v1+json';
export const ociLayerMediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** What a registry should accept for a manifest GET; docker sends the same list. */
export const manifestAcceptHeader = [
  ociManifestMediaType,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface SmallImage {
  config: InMemoryBlob;
  layers: InMemoryBlob[];
  manifest: InMemoryBlob;
}

/**
 * One small image: a JSON config, `layerCount` random layers and an OCI image manifest. The
 * config carries a random label so every image (and so every manifest) is new to the registry.
 */
export function makeSmallImage(layerCount: number, layerBytes: number): SmallImage {
  const layers = Array.from({ length: layerCount }, () => inMemoryBlob(randomBytes(layerBytes)));
  const config = inMemoryBlob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Labels: { 'io.meridian.bench.nonce': randomBytes(16).toString('hex') } },
        // The layers are random bytes, not tarballs; registries do not look inside them.
        rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
      }),
    ),
  );
  const manifest = inMemoryBlob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociManifestMediaType,
        config: { mediaType: ociConfigMediaType, digest: config.digest, size: config.size },
        layers: layers.map((layer) => ({ mediaType: ociLayerMediaType, digest: layer.digest, size: layer.size })),
      }),
    ),
  );
  return { config, layers, manifest };
}

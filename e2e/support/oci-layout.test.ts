/**
 * The layout builder is the e2e suites' source of truth for digests, so it is checked on its own:
 * image-spec "image-layout.md" structure, "config.md" diff_ids over the uncompressed tar, and
 * readLayout refusing a blob whose bytes do not match its name.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { blobPath, readLayout, sha256Digest, writeMultiPlatformLayout, writeSingleImageLayout } from './oci-layout.js';

async function tarEntryNames(tarBytes: Buffer): Promise<string[]> {
  const names: string[] = [];
  const reader = extract();
  const done = (async () => {
    for await (const entry of reader) {
      names.push(entry.header.name);
      entry.resume();
    }
  })();
  reader.end(tarBytes);
  await done;
  return names;
}

describe('oci-layout', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'meridian-oci-layout-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // image-spec image-layout.md: oci-layout, index.json with a ref.name, content-addressed blobs.
  it('writes a single-image layout that reads back with the same digests', async () => {
    const layout = await writeSingleImageLayout(dir, { tag: 'v1', layers: 2, layerSize: 4096 });
    expect(JSON.parse(await readFile(path.join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(await readLayout(dir, 'v1')).toEqual({
      kind: 'image',
      image: {
        manifestDigest: layout.manifestDigest,
        configDigest: layout.configDigest,
        layerDigests: layout.layerDigests,
        diffIds: layout.diffIds,
        platform: { os: 'linux', architecture: 'amd64' },
      },
    });
  });

  // image-spec config.md: rootfs.diff_ids are the digests of the uncompressed layer tars.
  it('makes gzip-compressed tar layers whose diff_ids hash the uncompressed tar', async () => {
    const layout = await writeSingleImageLayout(dir, { tag: 'v1', layers: 2, layerSize: 1000 });
    for (const [i, layerDigest] of layout.layerDigests.entries()) {
      const tarBytes = gunzipSync(await readFile(blobPath(dir, layerDigest)));
      expect(sha256Digest(tarBytes)).toBe(layout.diffIds[i]);
      expect(await tarEntryNames(tarBytes)).toEqual(['data/', 'data/payload.bin', 'data/layer.txt']);
    }
  });

  // image-spec image-index.md: one manifest per platform, each with its own config and layers.
  it('writes a multi-platform index with one image per platform', async () => {
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ];
    const layout = await writeMultiPlatformLayout(dir, { tag: 'v1', platforms, layerSize: 1000 });
    expect(layout.images.map((image) => image.platform)).toEqual(platforms);
    expect(new Set(layout.images.flatMap((image) => [image.configDigest, ...image.layerDigests])).size).toBe(6);
    expect(await readLayout(dir, 'v1')).toEqual({ kind: 'index', indexDigest: layout.indexDigest, images: layout.images });
  });

  it('refuses a blob whose bytes do not hash to its name', async () => {
    const layout = await writeSingleImageLayout(dir, { tag: 'v1', layers: 1, layerSize: 100 });
    await writeFile(blobPath(dir, layout.layerDigests[0]!), 'tampered');
    await expect(readLayout(dir, 'v1')).rejects.toThrow(/hashes to/);
  });
});

/**
 * A real OCI client against the registry: skopeo pushes a single-platform image and a
 * multi-platform index from OCI image layouts built on disk, reads them back with `inspect` and
 * `list-tags`, copies them out again and compares every digest, then deletes by digest.
 *
 * Runs against Meridian by default; `E2E_TARGET=distribution` runs the same scenario against CNCF
 * Distribution to show the scenario itself is right (see support/registry-under-test.ts).
 *
 * The `it`s form one story and run in order: later steps read what earlier ones pushed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  readLayout,
  sha256Digest,
  writeMultiPlatformLayout,
  writeSingleImageLayout,
  type MultiPlatformLayout,
  type SingleImageLayout,
} from './support/oci-layout.js';
import { parseRegistryTargets, startRegistryUnderTest, type RegistryUnderTest } from './support/registry-under-test.js';
import { createSkopeo, SkopeoCommandError, type Skopeo, type SkopeoRequest } from './support/skopeo.js';

const TAG = 'v1';
const SECOND_TAG = 'v1-again';

/** Paths of the requests skopeo made with `method`, in order (query strings dropped). */
function paths(requests: SkopeoRequest[], method: string): string[] {
  return requests.filter((r) => r.method === method).map((r) => new URL(r.url).pathname);
}

describe.each(parseRegistryTargets(process.env.E2E_TARGET))('skopeo against %s', (target) => {
  let workDir: string;
  let registry: RegistryUnderTest | undefined;
  let skopeo: Skopeo | undefined;
  let single: SingleImageLayout;
  let multi: MultiPlatformLayout;

  // `docker://` references into the registry under test.
  const singleRepo = () => `docker://${registry!.host}/e2e/single`;
  const multiRepo = () => `docker://${registry!.host}/e2e/multi`;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), `meridian-e2e-skopeo-${target}-`));
    [single, multi] = await Promise.all([
      // Three layers of random data, each 3 MiB and a bit: past the 1 MiB at which the gateway
      // writes directly (fs-writer.ts), ending mid-block, and still quick.
      writeSingleImageLayout(path.join(workDir, 'single-src'), { tag: TAG, layers: 3, layerSize: 3 * 1024 * 1024 + 4099 }),
      writeMultiPlatformLayout(path.join(workDir, 'multi-src'), {
        tag: TAG,
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
      }),
    ]);
    // E2E_SKOPEO_DEBUG=1 prints every request skopeo makes, for reporting a registry bug.
    skopeo = await createSkopeo({ echoDebugLog: process.env.E2E_SKOPEO_DEBUG === '1' });
    registry = await startRegistryUnderTest(target, path.join(workDir, 'registry'));
  });

  afterAll(async () => {
    await registry?.stop();
    await skopeo?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  // distribution-spec "Pushing blobs" (HEAD to check existence, then POST/PATCH/PUT uploads) and
  // "Pushing manifests" (PUT by tag).
  it('pushes a single-platform image from an OCI layout (Pushing blobs, Pushing manifests)', async () => {
    const { requests } = await skopeo!.copy(`oci:${single.dir}:${TAG}`, `${singleRepo()}:${TAG}`, {
      preserveDigests: true,
    });
    const blobs = [...single.layerDigests, single.configDigest];
    for (const digest of blobs) expect(paths(requests, 'HEAD')).toContain(`/v2/e2e/single/blobs/${digest}`);
    expect(paths(requests, 'POST').filter((p) => p === '/v2/e2e/single/blobs/uploads/')).toHaveLength(blobs.length);
    expect(paths(requests, 'PUT')).toContain(`/v2/e2e/single/manifests/${TAG}`);
  });

  // distribution-spec "Pushing manifests": each platform's manifest by digest, then the index by tag.
  it('pushes a multi-platform image index with --all (Pushing blobs, Pushing manifests)', async () => {
    const { requests } = await skopeo!.copy(`oci:${multi.dir}:${TAG}`, `${multiRepo()}:${TAG}`, {
      all: true,
      preserveDigests: true,
    });
    const manifestPuts = paths(requests, 'PUT').filter((p) => p.startsWith('/v2/e2e/multi/manifests/'));
    expect(manifestPuts).toEqual([
      ...multi.images.map((image) => `/v2/e2e/multi/manifests/${image.manifestDigest}`),
      `/v2/e2e/multi/manifests/${TAG}`,
    ]);
  });

  // distribution-spec "Pulling manifests": GET by tag and by digest return the pushed bytes.
  it('serves the exact manifest bytes by tag and by digest (Pulling manifests)', async () => {
    const singleByTag = await skopeo!.inspectRaw(`${singleRepo()}:${TAG}`);
    expect(sha256Digest(singleByTag)).toBe(single.manifestDigest);
    const singleByDigest = await skopeo!.inspectRaw(`${singleRepo()}@${single.manifestDigest}`);
    expect(sha256Digest(singleByDigest)).toBe(single.manifestDigest);

    const indexByTag = await skopeo!.inspectRaw(`${multiRepo()}:${TAG}`);
    expect(sha256Digest(indexByTag)).toBe(multi.indexDigest);
    expect(JSON.parse(indexByTag.toString('utf8'))).toMatchObject({
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: multi.images.map((image) => ({ digest: image.manifestDigest, platform: image.platform })),
    });
    for (const image of multi.images) {
      const manifest = await skopeo!.inspectRaw(`${multiRepo()}@${image.manifestDigest}`);
      expect(sha256Digest(manifest)).toBe(image.manifestDigest);
    }
  });

  // distribution-spec "Pulling manifests" and "Pulling blobs" (skopeo inspect fetches the config
  // blob to report architecture and os), plus "Content discovery" for RepoTags.
  it('describes each image with skopeo inspect (Pulling manifests, Pulling blobs)', async () => {
    const described = await skopeo!.inspect(`${singleRepo()}:${TAG}`);
    expect(described.Digest).toBe(single.manifestDigest);
    expect(described.Layers).toEqual(single.layerDigests);
    expect(described.Architecture).toBe('amd64');
    expect(described.Os).toBe('linux');
    expect(described.RepoTags).toContain(TAG);

    // An index resolves to the instance for the requested platform.
    for (const image of multi.images) {
      const instance = await skopeo!.inspect(`${multiRepo()}:${TAG}`, {
        os: image.platform.os,
        architecture: image.platform.architecture,
      });
      expect(instance.Layers).toEqual(image.layerDigests);
      expect(instance.Architecture).toBe(image.platform.architecture);
      expect(instance.Os).toBe(image.platform.os);
    }
  });

  // distribution-spec "Pushing blobs": a client checks existence with HEAD /v2/<name>/blobs/<digest>
  // and skips the upload on 200; then "Pushing manifests" under a second tag.
  it('pushes the same image under a second tag without re-uploading blobs (Pushing blobs, Pushing manifests)', async () => {
    const { requests } = await skopeo!.copy(`oci:${single.dir}:${TAG}`, `${singleRepo()}:${SECOND_TAG}`, {
      preserveDigests: true,
    });
    for (const digest of [...single.layerDigests, single.configDigest]) {
      expect(paths(requests, 'HEAD')).toContain(`/v2/e2e/single/blobs/${digest}`);
    }
    expect(paths(requests, 'POST')).toEqual([]);
    expect(paths(requests, 'PATCH')).toEqual([]);
    expect(paths(requests, 'PUT')).toEqual([`/v2/e2e/single/manifests/${SECOND_TAG}`]);
    const again = await skopeo!.inspectRaw(`${singleRepo()}:${SECOND_TAG}`);
    expect(sha256Digest(again)).toBe(single.manifestDigest);
  });

  // distribution-spec "Content discovery: Listing tags": GET /v2/<name>/tags/list.
  it('lists the tags of each repository (Content discovery: listing tags)', async () => {
    expect((await skopeo!.listTags(singleRepo())).sort()).toEqual([TAG, SECOND_TAG].sort());
    expect(await skopeo!.listTags(multiRepo())).toEqual([TAG]);
  });

  // distribution-spec "Pulling manifests" and "Pulling blobs": everything comes back bit for bit.
  it('copies the single-platform image back out with identical digests (Pulling manifests, Pulling blobs)', async () => {
    const outDir = path.join(workDir, 'single-out');
    await skopeo!.copy(`${singleRepo()}:${TAG}`, `oci:${outDir}:${TAG}`, { preserveDigests: true });
    expect(await readLayout(outDir, TAG)).toEqual({
      kind: 'image',
      image: {
        manifestDigest: single.manifestDigest,
        configDigest: single.configDigest,
        layerDigests: single.layerDigests,
        diffIds: single.diffIds,
        platform: single.platform,
      },
    });
  });

  // distribution-spec "Pulling manifests" (index, then each manifest by digest) and "Pulling blobs".
  it('copies the image index back out with --all with identical digests (Pulling manifests, Pulling blobs)', async () => {
    const outDir = path.join(workDir, 'multi-out');
    await skopeo!.copy(`${multiRepo()}:${TAG}`, `oci:${outDir}:${TAG}`, { all: true, preserveDigests: true });
    expect(await readLayout(outDir, TAG)).toEqual({
      kind: 'index',
      indexDigest: multi.indexDigest,
      images: multi.images,
    });
  });

  // distribution-spec "Deleting manifests": DELETE /v2/<name>/manifests/<digest> answers 202, and
  // the manifest is then unknown (404 MANIFEST_UNKNOWN) by digest and through the tags naming it.
  it('deletes the single-platform image by digest (Deleting manifests)', async () => {
    const { requests } = await skopeo!.delete(`${singleRepo()}@${single.manifestDigest}`);
    expect(paths(requests, 'DELETE')).toEqual([`/v2/e2e/single/manifests/${single.manifestDigest}`]);

    const byDigest = await skopeo!.inspectRaw(`${singleRepo()}@${single.manifestDigest}`).catch((err: unknown) => err);
    expect(byDigest).toBeInstanceOf(SkopeoCommandError);
    expect((byDigest as SkopeoCommandError).stderr).toMatch(/manifest unknown/i);

    const byTag = await skopeo!.inspectRaw(`${singleRepo()}:${TAG}`).catch((err: unknown) => err);
    expect(byTag).toBeInstanceOf(SkopeoCommandError);

    // The index in the other repository is untouched.
    expect(sha256Digest(await skopeo!.inspectRaw(`${multiRepo()}:${TAG}`))).toBe(multi.indexDigest);
  });
});

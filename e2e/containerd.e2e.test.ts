/**
 * containerd as a registry client: skopeo pushes a single-platform image and a two-platform index
 * from OCI layouts built on disk, then a private containerd daemon pulls them with `ctr` (by tag,
 * by digest, every platform of the index) and its image list and content store must hold exactly
 * the pushed digests; finally ctr pushes the index to a second repository, which it does by
 * mounting every blob from the first.
 *
 * Runs against Meridian by default; `E2E_TARGET=distribution` runs the same scenario against CNCF
 * Distribution (see support/registry-under-test.ts). E2E_CTR_DEBUG=1 echoes ctr's HTTP dump.
 *
 * The `it`s form one story and run in order: later steps read what earlier ones pulled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type Containerd, type CtrRequest } from './support/containerd.js';
import {
  sha256Digest,
  writeMultiPlatformLayout,
  writeSingleImageLayout,
  type MultiPlatformLayout,
  type SingleImageLayout,
} from './support/oci-layout.js';
import { parseRegistryTargets, startRegistryUnderTest, type RegistryUnderTest } from './support/registry-under-test.js';
import { createSkopeo, type Skopeo } from './support/skopeo.js';

const TAG = 'v1';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Paths of the requests ctr made with `method`, in order, query strings dropped. */
function paths(requests: CtrRequest[], method: string): string[] {
  return requests.filter((r) => r.method === method).map((r) => new URL(r.path, 'http://registry').pathname);
}

describe.each(parseRegistryTargets(process.env.E2E_TARGET))('containerd (ctr) against %s', (target) => {
  let workDir: string;
  let registry: RegistryUnderTest | undefined;
  let skopeo: Skopeo | undefined;
  let containerd: Containerd | undefined;
  let single: SingleImageLayout;
  let multi: MultiPlatformLayout;

  const singleRef = () => `${registry!.host}/e2e/ctr:${TAG}`;
  const multiRef = () => `${registry!.host}/e2e/ctr-multi:${TAG}`;
  const copyRef = () => `${registry!.host}/e2e/ctr-copy:${TAG}`;

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), `meridian-e2e-containerd-${target}-`));
    containerd = await startContainerd({
      workDir: path.join(workDir, 'containerd'),
      echoDebugLog: process.env.E2E_CTR_DEBUG === '1',
    });
    [single, multi] = await Promise.all([
      writeSingleImageLayout(path.join(workDir, 'single-src'), { tag: TAG, layers: 2, layerSize: 128 * 1024 }),
      writeMultiPlatformLayout(path.join(workDir, 'multi-src'), {
        tag: TAG,
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
      }),
    ]);
    skopeo = await createSkopeo();
    registry = await startRegistryUnderTest(target, path.join(workDir, 'registry'));
    // The content under test, pushed by the client the skopeo suite already checks.
    await skopeo.copy(`oci:${single.dir}:${TAG}`, `docker://${singleRef()}`, { preserveDigests: true });
    await skopeo.copy(`oci:${multi.dir}:${TAG}`, `docker://${multiRef()}`, { all: true, preserveDigests: true });
  });

  afterAll(async () => {
    await containerd?.stop();
    await registry?.stop();
    await skopeo?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  // distribution-spec "Checking if content exists in the registry" (containerd resolves a tag with
  // HEAD /v2/<name>/manifests/<tag>), then "Pulling manifests" by digest and "Pulling blobs".
  it('pulls a single-platform image by tag (Checking if content exists, Pulling manifests, Pulling blobs)', async () => {
    const { requests } = await containerd!.pull(singleRef());
    expect(paths(requests, 'HEAD')).toContain(`/v2/e2e/ctr/manifests/${TAG}`);
    const gets = paths(requests, 'GET');
    expect(gets).toContain(`/v2/e2e/ctr/manifests/${single.manifestDigest}`);
    for (const digest of [single.configDigest, ...single.layerDigests]) expect(gets).toContain(`/v2/e2e/ctr/blobs/${digest}`);

    expect((await containerd!.listImages()).find((image) => image.ref === singleRef())).toEqual({
      ref: singleRef(),
      mediaType: OCI_MANIFEST,
      digest: single.manifestDigest,
      platforms: ['linux/amd64'],
    });
    // containerd verifies every blob against its digest as it writes it to the content store.
    const content = await containerd!.listContent();
    for (const digest of [single.manifestDigest, single.configDigest, ...single.layerDigests]) expect(content).toContain(digest);
  });

  // distribution-spec "Checking if content exists in the registry" and "Pulling manifests" by digest.
  it('pulls the same image by digest (Checking if content exists, Pulling manifests)', async () => {
    const byDigest = `${registry!.host}/e2e/ctr@${single.manifestDigest}`;
    const { requests } = await containerd!.pull(byDigest);
    expect(paths(requests, 'HEAD')).toContain(`/v2/e2e/ctr/manifests/${single.manifestDigest}`);
    expect((await containerd!.listImages()).find((image) => image.ref === byDigest)).toMatchObject({
      mediaType: OCI_MANIFEST,
      digest: single.manifestDigest,
    });
  });

  // distribution-spec "Pulling manifests": the index by tag, then every platform's manifest by
  // digest; "Pulling blobs" for every config and layer.
  it('pulls every platform of an image index with --all-platforms (Pulling manifests, Pulling blobs)', async () => {
    const { requests } = await containerd!.pull(multiRef(), { allPlatforms: true });
    const gets = paths(requests, 'GET');
    for (const image of multi.images) {
      expect(gets).toContain(`/v2/e2e/ctr-multi/manifests/${image.manifestDigest}`);
      for (const digest of [image.configDigest, ...image.layerDigests]) {
        expect(gets).toContain(`/v2/e2e/ctr-multi/blobs/${digest}`);
      }
    }

    const listed = (await containerd!.listImages()).find((image) => image.ref === multiRef());
    expect(listed).toMatchObject({ mediaType: OCI_INDEX, digest: multi.indexDigest });
    expect(listed?.platforms.sort()).toEqual(['linux/amd64', 'linux/arm64']);
    const content = await containerd!.listContent();
    expect(content).toContain(multi.indexDigest);
    for (const image of multi.images) {
      for (const digest of [image.manifestDigest, image.configDigest, ...image.layerDigests]) expect(content).toContain(digest);
    }
  });

  // distribution-spec "Mounting a blob from another repository": POST
  // /v2/<name>/blobs/uploads/?mount=<digest>&from=<other> answers 201, so containerd uploads no
  // bytes; then "Pushing manifests" (each platform's manifest, and the index by tag).
  it('pushes the index to another repository by mounting its blobs (Pushing blobs: mounting, Pushing manifests)', async () => {
    await containerd!.tag(multiRef(), copyRef());
    const { requests } = await containerd!.push(copyRef());

    const blobs = multi.images.flatMap((image) => [image.configDigest, ...image.layerDigests]);
    const mounts = requests
      .filter((r) => r.method === 'POST')
      .map((r) => new URL(r.path, 'http://registry'))
      .map((url) => ({
        path: url.pathname,
        mount: url.searchParams.get('mount'),
        from: url.searchParams.get('from'),
      }));
    expect(mounts.map((m) => m.mount).sort()).toEqual([...blobs].sort());
    for (const m of mounts) expect(m).toMatchObject({ path: '/v2/e2e/ctr-copy/blobs/uploads/', from: 'e2e/ctr-multi' });
    // A refused mount (202) would be followed by an upload of the bytes.
    expect(paths(requests, 'PATCH')).toEqual([]);
    expect(paths(requests, 'PUT').filter((p) => p.startsWith('/v2/e2e/ctr-copy/blobs/'))).toEqual([]);
    const manifestPuts = paths(requests, 'PUT').filter((p) => p.startsWith('/v2/e2e/ctr-copy/manifests/'));
    expect(manifestPuts.sort()).toEqual(
      [
        ...multi.images.map((image) => `/v2/e2e/ctr-copy/manifests/${image.manifestDigest}`),
        `/v2/e2e/ctr-copy/manifests/${TAG}`,
      ].sort(),
    );

    // The copy serves the exact index bytes, and a mounted blob is readable in its new repository.
    const res = await fetch(`${registry!.url}/v2/e2e/ctr-copy/manifests/${TAG}`, { headers: { Accept: OCI_INDEX } });
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(multi.indexDigest);
    expect(sha256Digest(bytes)).toBe(multi.indexDigest);
    const layer = multi.images[1]!.layerDigests[0]!;
    const blob = await fetch(`${registry!.url}/v2/e2e/ctr-copy/blobs/${layer}`);
    expect(blob.status).toBe(200);
    expect(sha256Digest(Buffer.from(await blob.arrayBuffer()))).toBe(layer);
  });
});

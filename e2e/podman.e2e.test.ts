/**
 * Real container tooling against the registry: buildah builds an image from scratch (two layers of
 * files, a config with a command and labels), podman pushes it as an OCI manifest and as a Docker
 * schema 2 manifest, lists the tags, pulls both back into empty storage and compares image ids,
 * manifest digests and the files themselves; then podman pushes a two-platform manifest list and
 * pulls one platform of it. No container is ever run (see support/podman.ts).
 *
 * Runs against Meridian by default; `E2E_TARGET=distribution` runs the same scenario against CNCF
 * Distribution (see support/registry-under-test.ts). E2E_PODMAN_DEBUG=1 echoes podman's request log.
 *
 * The `it`s form one story and run in order: later steps read what earlier ones pushed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from './support/oci-layout.js';
import { createPodman, type BuiltImage, type Podman, type PodmanRequest } from './support/podman.js';
import { parseRegistryTargets, startRegistryUnderTest, type RegistryUnderTest } from './support/registry-under-test.js';

// Spelled out rather than imported from @meridian/oci, as in support/oci-layout.ts.
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, 'application/vnd.docker.distribution.manifest.list.v2+json'];

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
}
interface ManifestJson {
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}
interface IndexJson {
  mediaType?: string;
  manifests: Descriptor[];
}

interface FetchedManifest {
  contentType: string | null;
  digestHeader: string | null;
  bytes: Buffer;
}

/** Paths of the requests podman made with `method`, in order (query strings dropped). */
function paths(requests: PodmanRequest[], method: string): string[] {
  return requests.filter((r) => r.method === method).map((r) => new URL(r.url).pathname);
}

/**
 * containers/image retries a failed blob transfer up to three times and then succeeds, so a
 * registry that cuts connections would pass unnoticed; its warning is the only trace.
 */
function expectNoRetries(stderr: string): void {
  expect(stderr.split('\n').filter((line) => /retrying/i.test(line))).toEqual([]);
}

describe.each(parseRegistryTargets(process.env.E2E_TARGET))('podman and buildah against %s', (target) => {
  let workDir: string;
  let registry: RegistryUnderTest | undefined;
  let podman: Podman | undefined;
  let image: BuiltImage;
  let ociDigest: string;
  let ociManifest: ManifestJson;
  let dockerDigest: string;
  let platformImages: { amd64: BuiltImage; arm64: BuiltImage };
  let indexDigest: string;
  let index: IndexJson;

  // What buildah copies into the image, by path inside it; random payloads make every blob new.
  const files: Record<string, Buffer> = {
    '/srv/meridian/hello.txt': Buffer.from('hello from the meridian podman e2e test\n'),
    '/srv/meridian/payload.bin': randomBytes(192 * 1024),
    '/srv/meridian/conf/app.conf': Buffer.from('listen = 0.0.0.0:8080\n'),
    '/srv/meridian/conf/extra.bin': randomBytes(64 * 1024),
  };
  const CMD = ['/srv/meridian/bin/serve', '--port', '8080'];
  const LABELS = { 'org.opencontainers.image.title': 'meridian e2e podman', 'meridian.e2e': 'podman' };

  const repo = () => `${registry!.host}/e2e/podman`;

  /** GET /v2/<name>/manifests/<reference> as a neutral reader: the bytes and headers the registry serves. */
  async function fetchManifest(reference: string): Promise<FetchedManifest> {
    const res = await fetch(`${registry!.url}/v2/e2e/podman/manifests/${reference}`, {
      headers: { Accept: ACCEPT.join(', ') },
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`GET manifest ${reference}: ${res.status} ${bytes.toString('utf8')}`);
    return { contentType: res.headers.get('content-type'), digestHeader: res.headers.get('docker-content-digest'), bytes };
  }

  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), `meridian-e2e-podman-${target}-`));
    podman = await createPodman({ echoDebugLog: process.env.E2E_PODMAN_DEBUG === '1' });
    registry = await startRegistryUnderTest(target, path.join(workDir, 'registry'));
    const layerOf = (dir: string) => ({
      destination: dir,
      files: Object.fromEntries(
        Object.entries(files)
          .filter(([file]) => path.dirname(file) === dir)
          .map(([file, content]) => [path.basename(file), content]),
      ),
    });
    image = await podman.build({
      name: 'localhost/meridian-e2e/podman:built',
      layers: [layerOf('/srv/meridian'), layerOf('/srv/meridian/conf')],
      cmd: CMD,
      labels: LABELS,
      env: ['MERIDIAN_E2E=1'],
    });
  });

  afterAll(async () => {
    await registry?.stop();
    await podman?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  // distribution-spec "Pushing blobs" (POST, PATCH, PUT per blob) and "Pushing manifests" (PUT by tag).
  it('pushes an OCI image with podman push --format oci (Pushing blobs, Pushing manifests)', async () => {
    const pushed = await podman!.push(image.name, `${repo()}:v1`, { format: 'oci' });
    expectNoRetries(pushed.stderr);
    // Two layers and the config, each a new blob.
    expect(paths(pushed.requests, 'POST').filter((p) => p === '/v2/e2e/podman/blobs/uploads/')).toHaveLength(3);
    expect(paths(pushed.requests, 'PUT').at(-1)).toBe('/v2/e2e/podman/manifests/v1');

    const served = await fetchManifest('v1');
    expect(served.contentType).toBe(OCI_MANIFEST);
    expect(served.digestHeader).toBe(pushed.digest);
    expect(sha256Digest(served.bytes)).toBe(pushed.digest);
    ociDigest = pushed.digest;
    ociManifest = JSON.parse(served.bytes.toString('utf8')) as ManifestJson;
    expect(ociManifest.config).toMatchObject({ mediaType: OCI_CONFIG, digest: image.configDigest });
    expect(ociManifest.layers.map((l) => l.mediaType)).toEqual([OCI_LAYER_GZIP, OCI_LAYER_GZIP]);
  });

  // distribution-spec "Pushing blobs": HEAD /v2/<name>/blobs/<digest> answers 200 for blobs the
  // repository holds, so the client uploads nothing; then "Pushing manifests" with a Docker schema 2
  // manifest. (podman knows the compressed layer digests from the first push through
  // containers/image's blob-info cache; without it, it would have to compress and upload again.)
  it('pushes the same image as Docker schema 2 without uploading blobs again (Pushing blobs, Pushing manifests)', async () => {
    const pushed = await podman!.push(image.name, `${repo()}:v1-docker`, { format: 'v2s2' });
    expectNoRetries(pushed.stderr);
    expect(paths(pushed.requests, 'HEAD')).toContain(`/v2/e2e/podman/blobs/${image.configDigest}`);
    expect(paths(pushed.requests, 'POST')).toEqual([]);
    expect(paths(pushed.requests, 'PATCH')).toEqual([]);
    expect(paths(pushed.requests, 'PUT')).toEqual(['/v2/e2e/podman/manifests/v1-docker']);

    const served = await fetchManifest('v1-docker');
    expect(served.contentType).toBe(DOCKER_MANIFEST);
    expect(served.digestHeader).toBe(pushed.digest);
    expect(sha256Digest(served.bytes)).toBe(pushed.digest);
    expect(pushed.digest).not.toBe(ociDigest);
    dockerDigest = pushed.digest;
    const manifest = JSON.parse(served.bytes.toString('utf8')) as ManifestJson;
    expect(manifest.mediaType).toBe(DOCKER_MANIFEST);
    expect(manifest.config).toMatchObject({ mediaType: DOCKER_CONFIG, digest: image.configDigest });
    // The same compressed bytes under Docker media types.
    expect(manifest.layers.map((l) => [l.mediaType, l.digest])).toEqual(
      ociManifest.layers.map((l) => [DOCKER_LAYER_GZIP, l.digest]),
    );
  });

  // distribution-spec "Content discovery: Listing tags": GET /v2/<name>/tags/list.
  it('lists both tags with podman search --list-tags (Content discovery: listing tags)', async () => {
    expect((await podman!.listTags(repo())).sort()).toEqual(['v1', 'v1-docker']);
  });

  // distribution-spec "Pulling manifests" (GET by tag) and "Pulling blobs" (config and every layer).
  it('pulls the OCI image by tag into empty storage with the same image id (Pulling manifests, Pulling blobs)', async () => {
    await podman!.removeAllImages();
    expect(await podman!.listImageIds()).toEqual([]);

    const pulled = await podman!.pull(`${repo()}:v1`);
    expectNoRetries(pulled.stderr);
    const gets = paths(pulled.requests, 'GET');
    expect(gets).toContain('/v2/e2e/podman/manifests/v1');
    for (const blob of [ociManifest.config, ...ociManifest.layers]) expect(gets).toContain(`/v2/e2e/podman/blobs/${blob.digest}`);

    const inspected = await podman!.inspect(`${repo()}:v1`);
    expect(`sha256:${inspected.Id}`).toBe(image.configDigest);
    expect(inspected.Digest).toBe(ociDigest);
    expect(inspected.ManifestType).toBe(OCI_MANIFEST);
    expect(inspected.RepoDigests).toContain(`${repo()}@${ociDigest}`);
    expect(inspected.Architecture).toBe('amd64');
    expect(inspected.Os).toBe('linux');
    expect(inspected.Config.Cmd).toEqual(CMD);
    expect(inspected.Config.Labels).toMatchObject(LABELS);
    expect(inspected.Config.Env).toContain('MERIDIAN_E2E=1');
    expect(inspected.RootFS.Layers).toHaveLength(2);
  });

  // distribution-spec "Pulling manifests": GET /v2/<name>/manifests/<digest>, here a Docker schema 2 one.
  it('pulls the Docker schema 2 image by digest with the same image id (Pulling manifests, Pulling blobs)', async () => {
    await podman!.removeAllImages();
    const pulled = await podman!.pull(`${repo()}@${dockerDigest}`);
    expectNoRetries(pulled.stderr);
    expect(paths(pulled.requests, 'GET')).toContain(`/v2/e2e/podman/manifests/${dockerDigest}`);

    const inspected = await podman!.inspect(`${repo()}@${dockerDigest}`);
    expect(`sha256:${inspected.Id}`).toBe(image.configDigest);
    expect(inspected.Digest).toBe(dockerDigest);
    expect(inspected.ManifestType).toBe(DOCKER_MANIFEST);
  });

  // distribution-spec "Pulling blobs": the layers podman unpacked are the files buildah copied in.
  it('holds every file buildah copied in the pulled image (Pulling blobs)', async () => {
    const read = await podman!.readImageFiles(`${repo()}@${dockerDigest}`, Object.keys(files));
    for (const [file, content] of Object.entries(files)) expect(read[file]?.equals(content), file).toBe(true);
  });

  // distribution-spec "Pushing manifests": each platform's manifest by digest, then the index by tag.
  it('pushes a two-platform manifest list with podman manifest push --all (Pushing blobs, Pushing manifests)', async () => {
    const build = (architecture: string) =>
      podman!.build({
        name: `localhost/meridian-e2e/podman:${architecture}`,
        layers: [{ destination: '/srv/meridian', files: { [`${architecture}.bin`]: randomBytes(32 * 1024) } }],
        cmd: CMD,
        labels: LABELS,
        architecture,
      });
    platformImages = { amd64: await build('amd64'), arm64: await build('arm64') };
    const list = 'localhost/meridian-e2e/podman-list:v1';
    await podman!.createManifestList(list, [platformImages.amd64.name, platformImages.arm64.name]);
    const pushed = await podman!.pushManifestList(list, `${repo()}:multi`);
    expectNoRetries(pushed.stderr);

    const served = await fetchManifest('multi');
    expect(served.contentType).toBe(OCI_INDEX);
    expect(served.digestHeader).toBe(pushed.digest);
    expect(sha256Digest(served.bytes)).toBe(pushed.digest);
    indexDigest = pushed.digest;
    index = JSON.parse(served.bytes.toString('utf8')) as IndexJson;
    expect(index.mediaType).toBe(OCI_INDEX);
    expect(index.manifests.map((m) => [m.mediaType, m.platform?.os, m.platform?.architecture])).toEqual([
      [OCI_MANIFEST, 'linux', 'amd64'],
      [OCI_MANIFEST, 'linux', 'arm64'],
    ]);
    // Children first (by digest), the index last (by tag).
    expect(paths(pushed.requests, 'PUT').filter((p) => p.startsWith('/v2/e2e/podman/manifests/'))).toEqual([
      ...index.manifests.map((m) => `/v2/e2e/podman/manifests/${m.digest}`),
      '/v2/e2e/podman/manifests/multi',
    ]);
    for (const [i, built] of [platformImages.amd64, platformImages.arm64].entries()) {
      const child = await fetchManifest(index.manifests[i]!.digest);
      expect(sha256Digest(child.bytes)).toBe(index.manifests[i]!.digest);
      expect((JSON.parse(child.bytes.toString('utf8')) as ManifestJson).config.digest).toBe(built.configDigest);
    }
  });

  // distribution-spec "Pulling manifests": the index by tag, then the chosen platform's manifest by digest.
  it('pulls the arm64 image out of the index with podman pull --arch (Pulling manifests, Pulling blobs)', async () => {
    await podman!.removeAllImages();
    const pulled = await podman!.pull(`${repo()}:multi`, { architecture: 'arm64' });
    expectNoRetries(pulled.stderr);
    const arm64 = index.manifests.find((m) => m.platform?.architecture === 'arm64')!;
    const amd64 = index.manifests.find((m) => m.platform?.architecture === 'amd64')!;
    const gets = paths(pulled.requests, 'GET');
    expect(gets).toContain('/v2/e2e/podman/manifests/multi');
    expect(gets).toContain(`/v2/e2e/podman/manifests/${arm64.digest}`);
    expect(gets).not.toContain(`/v2/e2e/podman/manifests/${amd64.digest}`);

    const inspected = await podman!.inspect(`${repo()}:multi`);
    expect(`sha256:${inspected.Id}`).toBe(platformImages.arm64.configDigest);
    expect(inspected.Architecture).toBe('arm64');
    expect(inspected.Digest).toBe(indexDigest);
  });
});

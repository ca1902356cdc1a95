import { createHash, randomBytes } from 'node:crypto';
import { ROUTES_BY_NAME, MediaType, type RouteName, type RouteParams } from '@meridian/oci';

/**
 * A small OCI Distribution client for tests, building paths from libs/oci's route table so the
 * tests and the gateway cannot disagree on a URL. It returns raw fetch Responses: tests assert
 * on statuses and headers themselves.
 */
export class OciTestClient {
  /** `headers` go with every request (a `traceparent`, say) unless the request sets its own. */
  constructor(
    readonly baseUrl: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  url(route: RouteName, params: RouteParams = {}, query?: Record<string, string>): string {
    const path = ROUTES_BY_NAME[route].path(params);
    const search = query ? `?${new URLSearchParams(query).toString()}` : '';
    return `${this.baseUrl}${path}${search}`;
  }

  /** Resolves a Location header (relative or absolute) against the registry. */
  resolve(location: string): string {
    return new URL(location, this.baseUrl).toString();
  }

  fetch(pathOrUrl: string, init: RequestInit = {}): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.headers)) if (!headers.has(name)) headers.set(name, value);
    return fetch(url, { redirect: 'manual', ...init, headers, ...(init.body ? { duplex: 'half' } : {}) } as RequestInit);
  }

  /** Monolithic upload: POST ?digest= with the bytes (distribution-spec "Pushing a blob monolithically"). */
  async pushBlob(name: string, bytes: Uint8Array): Promise<string> {
    const digest = sha256(bytes);
    const response = await this.fetch(this.url('blob-upload', { name }, { digest }), {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes as BodyInit,
    });
    if (response.status !== 201) throw new Error(`pushBlob ${name}: ${response.status} ${await response.text()}`);
    return digest;
  }

  async pushManifest(name: string, reference: string, manifest: Uint8Array | object, mediaType: string = MediaType.OciManifest): Promise<Response> {
    const body = manifest instanceof Uint8Array ? manifest : Buffer.from(JSON.stringify(manifest));
    return this.fetch(this.url('manifest', { name, reference }), {
      method: 'PUT',
      headers: { 'Content-Type': mediaType },
      body: body as BodyInit,
    });
  }

  /** Pushes config and layers, then the manifest under `tag`; returns the image's parts. */
  async pushImage(name: string, tag: string, image: TestImage = buildImage()): Promise<TestImage & { response: Response }> {
    for (const blob of [image.config, ...image.layers]) await this.pushBlob(name, blob.bytes);
    const response = await this.pushManifest(name, tag, image.manifestBytes, image.mediaType);
    if (response.status !== 201) throw new Error(`pushImage ${name}:${tag}: ${response.status} ${await response.text()}`);
    return { ...image, response };
  }
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export interface TestBlob {
  bytes: Buffer;
  digest: string;
  descriptor: { mediaType: string; digest: string; size: number };
}

export interface TestImage {
  config: TestBlob;
  layers: TestBlob[];
  manifest: Record<string, unknown>;
  manifestBytes: Buffer;
  digest: string;
  mediaType: string;
}

export function blobOf(bytes: Buffer, mediaType: string): TestBlob {
  const digest = sha256(bytes);
  return { bytes, digest, descriptor: { mediaType, digest, size: bytes.length } };
}

export interface BuildImageOptions {
  layers?: number;
  layerSize?: number;
  subject?: { mediaType: string; digest: string; size: number };
  artifactType?: string;
  annotations?: Record<string, string>;
  configMediaType?: string;
  /** Docker schema2 instead of OCI. */
  docker?: boolean;
}

/** An image manifest with a config and random layers (random, so each build is distinct). */
export function buildImage(options: BuildImageOptions = {}): TestImage {
  const docker = options.docker ?? false;
  const configMediaType = options.configMediaType ?? (docker ? MediaType.DockerConfig : MediaType.OciConfig);
  const config = blobOf(
    configMediaType === MediaType.OciEmpty
      ? Buffer.from('{}')
      : Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') })),
    configMediaType,
  );
  const layerType = docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip';
  const layers = Array.from({ length: options.layers ?? 2 }, () => blobOf(randomBytes(options.layerSize ?? 512), layerType));
  const mediaType = docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: config.descriptor,
    layers: layers.map((layer) => layer.descriptor),
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { config, layers, manifest, manifestBytes, digest: sha256(manifestBytes), mediaType };
}

/** An image index over already-built images (each with its platform). */
export function buildIndex(images: Array<{ image: TestImage; platform: { os: string; architecture: string } }>, docker = false) {
  const mediaType = docker ? MediaType.DockerManifestList : MediaType.OciIndex;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map(({ image, platform }) => ({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.manifestBytes.length,
      platform,
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  return { index, bytes, digest: sha256(bytes), mediaType };
}

/** Parses an OCI error body, failing loudly when it is not one. */
export async function errorCodes(response: Response): Promise<string[]> {
  const body = (await response.json()) as { errors?: Array<{ code: string }> };
  if (!Array.isArray(body.errors)) throw new Error(`not an OCI error body: ${JSON.stringify(body)}`);
  return body.errors.map((e) => e.code);
}

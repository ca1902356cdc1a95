import { z } from 'zod';
import { digestOf, isDigest, type DigestAlgorithm } from './digest.js';
import { ManifestInvalidError } from './errors.js';
import {
  MediaType,
  essenceOf,
  isForeignLayerMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1MediaType,
  type ManifestMediaType,
} from './media-types.js';

/**
 * Parsing and validation of the four manifest formats a registry stores: OCI image manifest and
 * image index (image-spec v1.1 manifest.md, image-index.md), Docker schema2 manifest and manifest
 * list. Docker schema1 is refused (distribution-spec leaves it out; Distribution 2.8 disabled it).
 * Pure: bytes in, a typed description out, or ManifestInvalidError naming what is wrong.
 */

/** The most a registry must accept (distribution-spec "Pushing manifests": 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

// RFC 6838 type/subtype, as image-spec descriptor.md requires of mediaType.
const MEDIA_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** Deeper JSON than any manifest needs; parsing much deeper blocks the event loop for long. */
const MAX_JSON_DEPTH = 64;

const mediaTypeSchema = z.string().regex(MEDIA_TYPE_PATTERN, 'not a valid media type');
const digestSchema = z.string().refine(isDigest, 'not a valid sha256 or sha512 digest');
// Postgres text and jsonb cannot hold a NUL or an unpaired surrogate; refusing them here makes
// such a manifest MANIFEST_INVALID instead of a failed insert.
const storableString = z.string().refine(isStorable, 'holds a NUL character or an unpaired UTF-16 surrogate');
const annotationsSchema = z.record(storableString, storableString);
// image-spec descriptor.md: urls MUST conform to RFC 3986 and SHOULD be http or https. They are
// where clients fetch foreign layers from, so, as Distribution does, only http(s) without a
// fragment is taken.
const urlSchema = z.string().refine(isFetchableUrl, 'not an http or https URL without a fragment');

const platformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});

export const descriptorSchema = z
  .object({
    mediaType: mediaTypeSchema,
    digest: digestSchema,
    size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    urls: z.array(urlSchema).optional(),
    annotations: annotationsSchema.optional(),
    data: z.string().optional(),
    artifactType: mediaTypeSchema.optional(),
    platform: platformSchema.optional(),
  })
  .superRefine((descriptor, context) => {
    // image-spec descriptor.md "data": base64 (RFC 4648), and the decoded bytes MUST be the
    // content the descriptor names, so they must match its size and digest.
    if (descriptor.data === undefined) return;
    const problem = embeddedDataProblem(descriptor.data, descriptor.size, descriptor.digest);
    if (problem) context.addIssue({ code: z.ZodIssueCode.custom, path: ['data'], message: problem });
  });

export type Descriptor = z.infer<typeof descriptorSchema>;

const imageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: mediaTypeSchema.optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});

const imageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: mediaTypeSchema.optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});

export interface ParsedManifest {
  mediaType: ManifestMediaType;
  /** Blobs the manifest needs present in its repository: config and distributable layers. */
  blobReferences: Descriptor[];
  /** Manifests an index needs present in its repository. */
  manifestReferences: Descriptor[];
  subject?: Descriptor;
  /**
   * What the referrers API reports (distribution-spec "Listing Referrers"): `artifactType`, or
   * for an image manifest without one, its config's media type.
   */
  artifactType?: string;
  annotations?: Record<string, string>;
}

/**
 * @param contentType the request's Content-Type; when it names a manifest type, the body's own
 *   `mediaType` (if any) must agree with it (image-spec manifest.md "mediaType").
 */
export function parseManifest(body: Uint8Array, contentType: string | undefined): ParsedManifest {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) throw new ManifestInvalidError(`manifest JSON nests deeper than ${MAX_JSON_DEPTH} levels`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ManifestInvalidError('manifest is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ManifestInvalidError('manifest must be a JSON object');
  }
  const document = json as Record<string, unknown>;
  const mediaType = resolveMediaType(document, essenceOf(contentType));

  if (isIndexMediaType(mediaType)) {
    const index = check(imageIndexSchema, document, mediaType);
    if (mediaType === MediaType.DockerManifestList && index.manifests.some((m) => !m.platform)) {
      throw new ManifestInvalidError('every entry of a Docker manifest list needs a platform');
    }
    return compact({
      mediaType,
      blobReferences: [],
      manifestReferences: index.manifests,
      subject: index.subject,
      artifactType: index.artifactType,
      annotations: index.annotations,
    });
  }

  const manifest = check(imageManifestSchema, document, mediaType);
  if (mediaType === MediaType.OciManifest && manifest.config.mediaType === MediaType.OciEmpty && manifest.artifactType === undefined) {
    // image-spec manifest.md "Guidelines for Artifact Usage": an empty config requires artifactType.
    throw new ManifestInvalidError('artifactType is required when config.mediaType is the empty media type');
  }
  const blobReferences = [manifest.config, ...manifest.layers.filter((layer) => !isForeignLayer(layer))];
  return compact({
    mediaType,
    blobReferences,
    manifestReferences: [],
    subject: manifest.subject,
    artifactType: manifest.artifactType ?? manifest.config.mediaType,
    annotations: manifest.annotations,
  });
}

function resolveMediaType(document: Record<string, unknown>, contentType: string): ManifestMediaType {
  const declared = typeof document.mediaType === 'string' ? document.mediaType : undefined;
  if (document.schemaVersion === 1 || isSchema1MediaType(contentType) || (declared && isSchema1MediaType(declared))) {
    throw new ManifestInvalidError('Docker schema1 manifests are not supported; push schema2 or OCI');
  }
  if (document.mediaType !== undefined && declared === undefined) {
    throw new ManifestInvalidError('mediaType must be a string');
  }
  const fromHeader = isManifestMediaType(contentType) ? contentType : undefined;
  if (fromHeader && declared && declared !== fromHeader) {
    throw new ManifestInvalidError(`mediaType ${declared} does not match Content-Type ${fromHeader}`);
  }
  if (!fromHeader && contentType !== '' && !isGenericContentType(contentType)) {
    throw new ManifestInvalidError(`unsupported manifest media type ${contentType}`);
  }
  const candidate = fromHeader ?? declared ?? inferMediaType(document);
  if (!candidate || !isManifestMediaType(candidate)) {
    throw new ManifestInvalidError(`unsupported manifest media type ${candidate ?? '(none)'}`);
  }
  return candidate;
}

/** Clients that send no usable Content-Type still send the body's own mediaType, or a shape. */
function inferMediaType(document: Record<string, unknown>): ManifestMediaType | undefined {
  if (Array.isArray(document.manifests)) return MediaType.OciIndex;
  if (typeof document.config === 'object' && document.config !== null) return MediaType.OciManifest;
  return undefined;
}

function isGenericContentType(contentType: string): boolean {
  return contentType === 'application/json' || contentType === 'application/octet-stream';
}

function isForeignLayer(layer: Descriptor): boolean {
  return isForeignLayerMediaType(layer.mediaType) && (layer.urls?.length ?? 0) > 0;
}

function check<T>(schema: z.ZodType<T>, document: unknown, mediaType: string): T {
  const result = schema.safeParse(document);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 5).map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
  throw new ManifestInvalidError(`invalid ${mediaType}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`, { issues });
}

function compact<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) if (value[key] === undefined) delete value[key];
  return value;
}

/** Whether Postgres can store the string: no NUL, no unpaired surrogate. */
function isStorable(value: string): boolean {
  return !/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value);
}

function isFetchableUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && !value.includes('#');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function embeddedDataProblem(data: string, size: number, digest: string): string | undefined {
  if (!BASE64.test(data)) return 'not base64 (RFC 4648 §4)';
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length !== size) return `decodes to ${bytes.length} bytes, but size is ${size}`;
  const algorithm = digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
  if (digestOf(bytes, algorithm) !== digest) return 'does not match the digest';
  return undefined;
}

/**
 * Whether the JSON text nests objects and arrays deeper than `limit`, found in one pass that
 * skips strings, before JSON.parse spends its time on it.
 */
function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

import {
  MAX_MANIFEST_BYTES,
  ManifestBlobUnknownError,
  ManifestInvalidError,
  ManifestNotAcceptableError,
  ManifestReferencedError,
  ManifestTooLargeError,
  ManifestUnknownError,
  NameUnknownError,
  DigestInvalidError,
  TagInvalidError,
  acceptsMediaType,
  assertRepositoryName,
  digestOf,
  parseManifest,
  parseReference,
  type Descriptor,
  type Reference,
} from '@meridian/oci';
import { localClock, type Metadata, type MetadataChange, type RepositoryLookup, type StoredManifest } from '@meridian/metadata';
import type { BlobService } from './blobs.js';
import type { CachedManifest, LookupCache } from './lookup-cache.js';
import { inSpan } from '@meridian/telemetry';

export interface PushedManifest {
  digest: string;
  subject?: string;
}

/**
 * Manifests by tag or digest (distribution-spec "Pulling manifests", "Pushing manifests",
 * "Deleting manifests"). Every write of a manifest, a tag or a delete happens here, in one
 * transaction that stamps it with the region's clock, appends it to the outbox (from which it
 * replicates to every other region) and announces it to the region's caches.
 */
export class ManifestService {
  constructor(
    private readonly metadata: Metadata,
    private readonly cache: LookupCache,
    /** This region's name: the origin of every write made here. */
    private readonly region: string,
    /** Confirms that the blobs a pushed manifest names have their bytes in the store. */
    private readonly blobs: BlobService,
  ) {}

  /**
   * The manifest `reference` names, if the client accepts its media type. The single place a
   * manifest miss is decided (read-through from a peer region hooks in here).
   */
  async get(repository: string, referenceText: string, accept: readonly string[]): Promise<CachedManifest> {
    assertRepositoryName(repository);
    const reference = lookupReference(repository, referenceText);
    const manifest = this.cache.getManifest(repository, referenceText) ?? (await this.load(repository, referenceText, reference));
    if (!acceptsMediaType(accept, manifest.mediaType)) {
      throw new ManifestNotAcceptableError(`manifest is ${manifest.mediaType}, which the Accept header does not include`, {
        mediaType: manifest.mediaType,
      });
    }
    return manifest;
  }

  /**
   * Verifies and stores a manifest, then points the tag at it when `reference` is a tag. All
   * blobs and child manifests it references must already be in the repository.
   */
  put(repository: string, referenceText: string, contentType: string | undefined, body: Buffer): Promise<PushedManifest> {
    // The span the change's outbox row records: its replication to other regions joins this trace.
    return inSpan('manifest.put', { attributes: { 'meridian.repository': repository } }, () => this.storeManifest(repository, referenceText, contentType, body));
  }

  private async storeManifest(repository: string, referenceText: string, contentType: string | undefined, body: Buffer): Promise<PushedManifest> {
    assertRepositoryName(repository);
    const reference = parseReference(referenceText);
    if (body.byteLength > MAX_MANIFEST_BYTES) throw new ManifestTooLargeError(`manifest exceeds ${MAX_MANIFEST_BYTES} bytes`);
    const digest = digestOf(body, reference.kind === 'digest' ? reference.digest.algorithm : 'sha256');
    if (reference.kind === 'digest' && reference.digest.value !== digest) {
      throw new DigestInvalidError(`manifest content has digest ${digest}, not ${reference.digest.value}`);
    }
    const parsed = await inSpan('manifest.validate', { attributes: { 'meridian.repository': repository, 'meridian.digest': digest } }, async () => {
      const parsed = parseManifest(body, contentType);
      // A blob whose bytes the store has lost turns pending here, so the check below refuses it.
      await this.blobs.confirmReferenced(parsed.blobReferences.map((d) => d.digest));
      return parsed;
    });
    const changes: MetadataChange[] = [{ kind: 'manifest', repository, digest }];
    if (reference.kind === 'tag') changes.push({ kind: 'tag', repository, tag: reference.tag });

    await this.metadata.transaction(async (tx) => {
      const clock = localClock(this.region);
      const repositoryId = await tx.repositories.ensure(repository);
      const blobSizes = await tx.blobs.sizesInRepository(repositoryId, parsed.blobReferences.map((d) => d.digest));
      const manifestSizes = await tx.manifests.sizesInRepository(repositoryId, parsed.manifestReferences.map((d) => d.digest));
      const missingBlobs = absentFrom(blobSizes, parsed.blobReferences);
      const missingManifests = absentFrom(manifestSizes, parsed.manifestReferences);
      if (missingBlobs.length + missingManifests.length > 0) {
        throw new ManifestBlobUnknownError(`manifest references content not in ${repository}`, {
          blobs: missingBlobs.slice(0, 20),
          manifests: missingManifests.slice(0, 20),
        });
      }
      // image-spec "Descriptor": size MUST be the size of the content. A wrong one would be
      // stored only to fail every client that pulls it (they check the length they read).
      const wrongSizes = [...misSized(blobSizes, parsed.blobReferences), ...misSized(manifestSizes, parsed.manifestReferences)];
      if (wrongSizes.length > 0) {
        throw new ManifestInvalidError('a descriptor\'s size is not the size of the content it names', { descriptors: wrongSizes.slice(0, 20) });
      }
      const stored = await tx.manifests.insert({
        repositoryId,
        digest,
        mediaType: parsed.mediaType,
        payload: body,
        ...(parsed.subject ? { subjectDigest: parsed.subject.digest } : {}),
        ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
        ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
        blobDigests: parsed.blobReferences.map((d) => d.digest),
        childDigests: parsed.manifestReferences.map((d) => d.digest),
      }, clock);
      // Bytes without a mediaType field can be pushed as more than one type; the first push
      // decided what they are, and a GET must not answer with another type than was pushed.
      if (stored.mediaType !== parsed.mediaType) {
        throw new ManifestInvalidError(`these bytes are already stored as ${stored.mediaType}, not ${parsed.mediaType}`, {
          digest,
          mediaType: stored.mediaType,
        });
      }
      const tagHlc = reference.kind === 'tag' ? await tx.tags.put(repositoryId, reference.tag, stored.id, clock) : undefined;
      await tx.outbox.append([
        {
          hlc: tagHlc ?? stored.hlc,
          body: {
            kind: 'manifest.put',
            repository,
            digest,
            mediaType: parsed.mediaType,
            size: body.byteLength,
            ...(reference.kind === 'tag' ? { tag: reference.tag } : {}),
          },
        },
      ]);
      await tx.announce(changes);
    });
    for (const change of changes) this.cache.invalidate(change);
    return parsed.subject ? { digest, subject: parsed.subject.digest } : { digest };
  }

  /**
   * By digest: removes the manifest and every tag naming it. By tag: removes only the tag
   * (distribution-spec v1.1 "Deleting tags").
   */
  async delete(repository: string, referenceText: string): Promise<void> {
    assertRepositoryName(repository);
    const reference = lookupReference(repository, referenceText);
    const changes = await this.metadata.transaction(async (tx) => {
      const clock = localClock(this.region);
      const repositoryId = await tx.repositories.requireId(repository);
      const done: MetadataChange[] = [];
      if (reference.kind === 'tag') {
        const hlc = await tx.tags.delete(repositoryId, reference.tag, clock);
        if (hlc === undefined) throw new ManifestUnknownError(`tag ${reference.tag} is not in ${repository}`);
        await tx.outbox.append([{ hlc, body: { kind: 'tag.delete', repository, tag: reference.tag } }]);
        done.push({ kind: 'tag', repository, tag: reference.tag });
      } else {
        const result = await tx.manifests.delete(repositoryId, reference.digest.value, { local: clock });
        if (result.referencedBy.length > 0) {
          throw new ManifestReferencedError(`manifest ${reference.digest.value} is listed by an index of ${repository}; delete the index first`, {
            indexes: result.referencedBy,
          });
        }
        if (!result.deleted) throw new ManifestUnknownError(`manifest ${reference.digest.value} is not in ${repository}`);
        await tx.outbox.append([{ hlc: result.hlc!, body: { kind: 'manifest.delete', repository, digest: reference.digest.value } }]);
        done.push({ kind: 'manifest', repository, digest: reference.digest.value });
        for (const tag of result.tags) done.push({ kind: 'tag', repository, tag });
      }
      await tx.announce(done);
      return done;
    });
    for (const change of changes) this.cache.invalidate(change);
  }

  private async load(repository: string, referenceText: string, reference: Reference): Promise<CachedManifest> {
    const readAt = this.cache.currentGeneration(repository);
    const lookup: RepositoryLookup<StoredManifest> =
      reference.kind === 'tag'
        ? await this.metadata.manifests.findByTag(repository, reference.tag)
        : await this.metadata.manifests.findByDigest(repository, reference.digest.value);
    if (lookup.repositoryId === undefined) throw new NameUnknownError(`repository ${repository} is not known`);
    if (!lookup.found) throw new ManifestUnknownError(`manifest ${referenceText} is not in ${repository}`);
    const manifest = { digest: lookup.found.digest, mediaType: lookup.found.mediaType, payload: lookup.found.payload };
    this.cache.setManifest(repository, referenceText, manifest, readAt);
    return manifest;
  }
}

/**
 * The reference of a read or a delete. One that is neither a tag nor a digest of a supported
 * algorithm can name no manifest, so it is a miss: distribution-spec v1.1 "Pulling manifests"
 * answers 404 for any manifest not found (the conformance suite asks for `.INVALID_MANIFEST_NAME`),
 * and a HEAD has no body to explain a 400. Only a push, which would create the name, refuses it
 * as invalid (400).
 */
function lookupReference(repository: string, referenceText: string): Reference {
  try {
    return parseReference(referenceText);
  } catch (err) {
    if (!(err instanceof TagInvalidError || err instanceof DigestInvalidError)) throw err;
    throw new ManifestUnknownError(`no manifest in ${repository} can have this reference (${err.message})`);
  }
}

/** The digests of `descriptors` that `held` (digest → size) does not have. */
function absentFrom(held: Map<string, number>, descriptors: readonly Descriptor[]): string[] {
  return [...new Set(descriptors.map((d) => d.digest).filter((digest) => !held.has(digest)))];
}

/** The descriptors whose size is not the size `held` has for their digest. */
function misSized(held: Map<string, number>, descriptors: readonly Descriptor[]): Array<{ digest: string; size: number; actual: number }> {
  return descriptors.flatMap((d) => {
    const actual = held.get(d.digest);
    return actual !== undefined && actual !== d.size ? [{ digest: d.digest, size: d.size, actual }] : [];
  });
}

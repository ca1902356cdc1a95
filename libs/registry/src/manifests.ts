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
import type { ReadThrough } from './read-through.js';
import { ANONYMOUS, writeEvent, type Actor } from './actor.js';

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
    /** The region's peers, when it is part of a cluster: what the region lacks is asked of them. */
    private readonly readThrough?: ReadThrough,
  ) {}

  /**
   * The manifest `reference` names, if the client accepts its media type. The single place a
   * manifest miss is decided: in a cluster, a manifest or tag the region does not hold (yet) is
   * asked of the peers, and the newest answer by the replication clock is served, unless this
   * region knows a delete at least as new.
   */
  async get(repository: string, referenceText: string, accept: readonly string[]): Promise<CachedManifest> {
    assertRepositoryName(repository);
    const reference = lookupReference(repository, referenceText);
    const manifest =
      this.cache.getManifest(repository, referenceText) ??
      (await this.load(repository, referenceText, reference).catch((miss: unknown) => this.fromPeers(repository, referenceText, reference, miss)));
    if (!acceptsMediaType(accept, manifest.mediaType)) {
      throw new ManifestNotAcceptableError(`manifest is ${manifest.mediaType}, which the Accept header does not include`, {
        mediaType: manifest.mediaType,
      });
    }
    return manifest;
  }

  /**
   * Verifies and stores a manifest, then points the tag at it when `reference` is a tag. All
   * blobs and child manifests it references must already be in the repository. The push is
   * audited as `actor`'s, in its transaction.
   */
  put(repository: string, referenceText: string, contentType: string | undefined, body: Buffer, actor: Actor = ANONYMOUS): Promise<PushedManifest> {
    // The span the change's outbox row records: its replication to other regions joins this trace.
    return inSpan('manifest.put', { attributes: { 'meridian.repository': repository } }, () => this.storeManifest(repository, referenceText, contentType, body, actor));
  }

  private async storeManifest(repository: string, referenceText: string, contentType: string | undefined, body: Buffer, actor: Actor): Promise<PushedManifest> {
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
    const written: MetadataChange[] = [{ kind: 'manifest', repository, digest }];
    if (reference.kind === 'tag') written.push({ kind: 'tag', repository, tag: reference.tag });
    // One statement checks the references and writes the manifest, its tag, the outbox record,
    // the audit entry and the change notices, all or nothing (libs/metadata manifest-push.ts).
    const push = (elsewhere: ReadonlyMap<string, number>, announce: readonly MetadataChange[]) =>
      this.metadata.manifestPushes.push({
        repository,
        digest,
        mediaType: parsed.mediaType,
        payload: body,
        ...(parsed.subject ? { subjectDigest: parsed.subject.digest } : {}),
        ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
        ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
        blobs: parsed.blobReferences,
        children: parsed.manifestReferences,
        heldElsewhere: elsewhere,
        ...(reference.kind === 'tag' ? { tag: reference.tag } : {}),
        clock: localClock(this.region),
        change: {
          kind: 'manifest.put',
          repository,
          digest,
          mediaType: parsed.mediaType,
          size: body.byteLength,
          ...(reference.kind === 'tag' ? { tag: reference.tag } : {}),
        },
        audit: writeEvent(this.region, actor, 'push', `${repository}:${referenceText}`, { digest }),
        announce,
      });
    let changes = written;
    let pushed = await push(new Map(), changes);
    // Read-your-writes across regions: blobs the repository lacks here may have been uploaded to
    // another region and not replicated yet. Only a push refused for lacking them asks the peers,
    // so a push whose blobs are all here costs no lookup before its statement.
    const lacking = pushed.stored ? [] : absentFrom(pushed.blobSizes, parsed.blobReferences);
    if (lacking.length > 0 && this.readThrough) {
      const elsewhere = await this.readThrough.heldElsewhere(repository, lacking);
      if (elsewhere.size > 0) {
        changes = [...written, ...[...elsewhere.keys()].map((blob): MetadataChange => ({ kind: 'blob', repository, digest: blob }))];
        pushed = await push(elsewhere, changes);
      }
    }
    if (!pushed.stored) throw refusal(repository, digest, parsed, pushed);
    for (const change of changes) this.cache.invalidate(change);
    return parsed.subject ? { digest, subject: parsed.subject.digest } : { digest };
  }

  /**
   * By digest: removes the manifest and every tag naming it. By tag: removes only the tag
   * (distribution-spec v1.1 "Deleting tags"). Audited as `actor`'s, in its transaction.
   */
  async delete(repository: string, referenceText: string, actor: Actor = ANONYMOUS): Promise<void> {
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
      await tx.audit.append([writeEvent(this.region, actor, 'delete', `${repository}${reference.kind === 'tag' ? ':' : '@'}${referenceText}`)]);
      await tx.announce(done);
      return done;
    });
    for (const change of changes) this.cache.invalidate(change);
  }

  /**
   * A manifest this region lacks, served as the newest peer holding it has it. It is not stored
   * here: replication brings it with its clock as it brings every write, so the region's records
   * change only through its own writes and the replica applier, and nothing here needs undoing or
   * merging when the replicated write arrives. Until then every such read asks the peers.
   */
  private async fromPeers(repository: string, referenceText: string, reference: Reference, miss: unknown): Promise<CachedManifest> {
    if (!this.readThrough || !(miss instanceof ManifestUnknownError || miss instanceof NameUnknownError)) throw miss;
    const repositoryId = await this.metadata.repositories.findId(repository);
    const deletedHere =
      repositoryId === undefined
        ? undefined
        : reference.kind === 'tag'
          ? await this.metadata.tags.tombstoneOf(repositoryId, reference.tag)
          : await this.metadata.manifests.tombstoneOf(repositoryId, reference.digest.value);
    const found = await this.readThrough.manifest(repository, referenceText, deletedHere);
    if (!found) throw miss;
    return { digest: found.digest, mediaType: found.mediaType, payload: found.payload };
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

/**
 * Why a push was refused, from what its statement found, in the order the checks are made:
 * references the repository lacks, then descriptors of the wrong size (image-spec "Descriptor":
 * size MUST be the size of the content; a wrong one would be stored only to fail every client
 * that pulls it), then bytes already stored as another media type (bytes without a mediaType
 * field can be pushed as more than one type; the first push decided what they are, and a GET
 * must not answer with another type than was pushed).
 */
function refusal(
  repository: string,
  digest: string,
  parsed: { mediaType: string; blobReferences: readonly Descriptor[]; manifestReferences: readonly Descriptor[] },
  found: { blobSizes: Map<string, number>; manifestSizes: Map<string, number>; storedMediaType?: string },
): Error {
  const missingBlobs = absentFrom(found.blobSizes, parsed.blobReferences);
  const missingManifests = absentFrom(found.manifestSizes, parsed.manifestReferences);
  if (missingBlobs.length + missingManifests.length > 0) {
    return new ManifestBlobUnknownError(`manifest references content not in ${repository}`, {
      blobs: missingBlobs.slice(0, 20),
      manifests: missingManifests.slice(0, 20),
    });
  }
  const wrongSizes = [...misSized(found.blobSizes, parsed.blobReferences), ...misSized(found.manifestSizes, parsed.manifestReferences)];
  if (wrongSizes.length > 0) {
    return new ManifestInvalidError('a descriptor\'s size is not the size of the content it names', { descriptors: wrongSizes.slice(0, 20) });
  }
  if (found.storedMediaType !== undefined && found.storedMediaType !== parsed.mediaType) {
    return new ManifestInvalidError(`these bytes are already stored as ${found.storedMediaType}, not ${parsed.mediaType}`, {
      digest,
      mediaType: found.storedMediaType,
    });
  }
  return new Error(`manifest ${digest} of ${repository} was refused by its statement, yet every check passes`);
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

import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BlobUnknownError,
  DigestInvalidError,
  ManifestUnknownError,
  NameUnknownError,
  SizeInvalidError,
  assertRepositoryName,
  digestOf,
  parseDigest,
  parseManifest,
  parseReference,
  type Digest,
} from '@meridian/oci';
import type { BlobStore } from '@meridian/blobstore';
import type { InventoryCursor, Metadata, MetadataChange, MetadataTransaction } from '@meridian/metadata';
import type { ClockStamp } from '@meridian/proto/clock';
import { noPurgeCounts, type PurgeStep } from '@meridian/proto/purge';
import type { RegistryLogger } from './blobs.js';
import type { LookupCache } from './lookup-cache.js';

export interface BlobHolding {
  digest: string;
  /** The region holds the verified bytes (and the repository now links them). */
  held: boolean;
  /** When not held: bytes of an interrupted transfer already received, where a sender resumes. */
  offset: number;
}

export interface BlobPresence {
  digest: string;
  /** The region holds the verified bytes. */
  held: boolean;
  /** When held: the blob's size. */
  size: number;
  /** The repository asked about links the blob in this region. */
  linked: boolean;
}

export interface ReplicatedManifest {
  repository: string;
  digest: string;
  mediaType: string;
  payload: Buffer;
  tag?: string;
  clock: ClockStamp;
  /** An edge region's copy: blobs not held are recorded pending (ApplyManifestRequest.blobs_on_demand). */
  blobsOnDemand?: boolean;
}

export interface ManifestCopy {
  digest: string;
  mediaType: string;
  payload: Buffer;
  clock: ClockStamp;
  tagClock?: ClockStamp;
}

export type ReplicatedDeleteKind = 'tag' | 'manifest' | 'blob';

export interface ApplyOutcome {
  /** False when the region already held this write or a newer one: nothing changed. */
  applied: boolean;
  detail: string;
}

export type InventoryKind = 'manifests' | 'tags' | 'blobs';

export interface InventoryPage {
  kind: InventoryKind;
  manifests: Array<{ repository: string; digest: string; mediaType: string; size: number; clock: ClockStamp }>;
  tags: Array<{ repository: string; tag: string; digest: string; clock: ClockStamp }>;
  /** `pending`: the region should hold the bytes but lacks them (or, verified, they no longer match). */
  blobs: Array<{ repository: string; digest: string; size: number; state: 'present' | 'pending' }>;
  /** Undefined on the last page. */
  nextPageToken?: string;
  /**
   * On the last page: the region's changes still in its outbox, counted after the page was read.
   * 0 means the control plane has stored every write the pages show.
   */
  unrelayed?: number;
}

/** A malformed replica request (a page token that is not one of ours). */
export class ReplicaRequestError extends Error {
  override readonly name = 'ReplicaRequestError';
}

/** A blob transfer that ended before the whole blob came: what arrived is kept, a retry resumes. */
export class ReplicaTransferIncompleteError extends Error {
  override readonly name = 'ReplicaTransferIncompleteError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/**
 * A replicated write to a region that a purge has begun emptying (ReplicationFenceStore): it is
 * leaving the cluster, and the worker's next attempt finds it no longer taking replication.
 */
export class ReplicaFencedError extends Error {
  override readonly name = 'ReplicaFencedError';
  constructor() {
    super('this region is being purged and takes no replicated writes until it is registered again');
  }
}

/** A manifest the region must apply later: it names content the region does not hold yet. */
export class ReplicaPreconditionError extends Error {
  constructor(
    message: string,
    readonly missing: { blobs: string[]; manifests: string[] } = { blobs: [], manifests: [] },
  ) {
    super(message);
    this.name = 'ReplicaPreconditionError';
  }
}

const INVENTORY_KINDS: readonly InventoryKind[] = ['manifests', 'tags', 'blobs'];

/**
 * The region's side of replication: what the replica protocol asks of a region, over the same
 * stores the HTTP API uses. Writes applied here came from another region: they are checked
 * against this region's clocks (last writer wins) and announced to the region's caches, but not
 * appended to the outbox, since the control plane fans a change out from its origin only.
 */
export class ReplicaApplier {
  constructor(
    private readonly metadata: Metadata,
    private readonly store: BlobStore,
    private readonly cache: LookupCache,
    private readonly log?: RegistryLogger,
  ) {}

  /**
   * For each blob: whether the store holds its verified bytes (then it is linked into the
   * repository, as a push of bytes already held would be), or how far an interrupted transfer got.
   * A blob the region records pending is not held, whatever file is at its path: its bytes were
   * found lost or corrupt, and only a verified transfer makes it present again.
   */
  async linkBlobs(repository: string, blobs: ReadonlyArray<{ digest: string; size: number }>): Promise<BlobHolding[]> {
    assertRepositoryName(repository);
    const holdings: BlobHolding[] = [];
    const linked: Array<{ digest: string; size: number }> = [];
    for (const blob of blobs) {
      const digest = parseDigest(blob.digest);
      const info = await this.store.stat(digest);
      if (info && info.size === blob.size && (await this.metadata.blobs.stateOf(digest.value)) !== 'pending') {
        linked.push(blob);
        holdings.push({ digest: blob.digest, held: true, offset: 0 });
      } else {
        holdings.push({ digest: blob.digest, held: false, offset: await this.store.uploadSize(transferId(digest)) });
      }
    }
    if (linked.length > 0) await this.link(repository, linked);
    return holdings;
  }

  /**
   * For each blob, read-only: whether the region holds its verified bytes (recorded present, its
   * file of the recorded size), their size, and whether `repository` links it here. What a peer
   * asks before it fills a blob it lacks from this region.
   */
  async findBlobs(repository: string, digests: readonly string[]): Promise<BlobPresence[]> {
    assertRepositoryName(repository);
    const presences: BlobPresence[] = [];
    for (const text of new Set(digests)) {
      const digest = parseDigest(text);
      const [linked, state, info] = await Promise.all([
        this.metadata.blobs.findInRepository(repository, digest.value),
        this.metadata.blobs.stateOf(digest.value),
        this.store.stat(digest),
      ]);
      const held = state === 'present' && info !== undefined;
      presences.push({ digest: digest.value, held, size: held ? info.size : 0, linked: linked.found !== undefined });
    }
    return presences;
  }

  /**
   * Receives a blob's bytes from `offset` (which must be what the region holds of it, see
   * linkBlobs), verifies the whole against its digest and size, commits it and links it into the
   * repository. Bytes received before a broken stream are kept, so a retry sends only the rest.
   * Returns false when the region already held the blob and wrote nothing. A blob recorded
   * pending is written afresh: the verified upload replaces whatever file is at its path.
   */
  async receiveBlob(header: { repository: string; digest: string; size: number; offset: number }, source: Readable): Promise<boolean> {
    assertRepositoryName(header.repository);
    const digest = parseDigest(header.digest);
    const held = await this.store.stat(digest);
    if (held && (await this.metadata.blobs.stateOf(digest.value)) !== 'pending') {
      if (held.size !== header.size) throw new SizeInvalidError(`blob ${digest.value} has ${held.size} bytes, not ${header.size}`);
      source.destroy();
      await this.link(header.repository, [{ digest: digest.value, size: held.size }]);
      return false;
    }
    const id = transferId(digest);
    const size = await this.store.appendUpload(id, source, { start: header.offset });
    if (size > header.size) {
      await this.store.cancelUpload(id);
      throw new SizeInvalidError(`blob ${digest.value} was sent ${size} bytes, more than its ${header.size}`);
    }
    if (size < header.size) throw new ReplicaTransferIncompleteError(`blob ${digest.value} stream ended at ${size} of ${header.size} bytes; resume from there`, size);
    // Not the guarantee (link checks the fence with the write), but bytes a purge would not find
    // (no row names them) are not moved into the store once it has begun.
    if (await this.metadata.fence.isClosed()) throw new ReplicaFencedError();
    const stored = await this.store.completeUpload(id, digest, { expectedSize: header.size });
    await this.link(header.repository, [stored]);
    return true;
  }

  /**
   * Copies a blob into this region from a peer that holds it: `open(offset)` starts the peer's
   * bytes from what this region already holds of the blob (see linkBlobs), and they are received
   * as receiveBlob receives a sender's. The peer's failure (it cannot start, or breaks off) is
   * not this region's: it comes back as `sourceFailure`, with the bytes received before it kept
   * for the next transfer to resume from. Nothing is started on a peer that cannot send its first
   * bytes, so it leaves no transfer behind. Throws what receiveBlob throws for this region's own
   * failures (bytes that are not the digest, another transfer of the blob under way).
   */
  async fetchBlob(
    blob: { repository: string; digest: string; size: number },
    open: (offset: number) => Promise<Readable>,
  ): Promise<{ written: boolean; received: number; sourceFailure?: unknown }> {
    const [holding] = await this.linkBlobs(blob.repository, [blob]);
    if (holding!.held) return { written: false, received: 0 };
    const offset = holding!.offset;
    let received = 0;
    let sourceFailure: unknown;
    let peer: AsyncIterator<Buffer>;
    let first: IteratorResult<Buffer>;
    try {
      peer = (await open(offset))[Symbol.asyncIterator]();
      first = await peer.next();
    } catch (err) {
      return { written: false, received, sourceFailure: err };
    }
    // The peer breaking off ends the bytes early rather than failing them: receiveBlob then keeps
    // what came, as it does for a sender whose stream broke.
    async function* bytes(): AsyncGenerator<Buffer> {
      try {
        for (let next = first; !next.done; next = await peer.next()) {
          received += next.value.length;
          yield next.value;
        }
      } catch (err) {
        sourceFailure = err;
      }
    }
    const source = Readable.from(bytes(), { objectMode: false });
    try {
      const written = await this.receiveBlob({ ...blob, offset }, source);
      return { written, received };
    } catch (err) {
      if (sourceFailure !== undefined && err instanceof ReplicaTransferIncompleteError) return { written: false, received, sourceFailure };
      throw err;
    } finally {
      // A transfer refused before it read everything (another one under way) leaves the peer's call.
      source.destroy();
      await peer.return?.();
    }
  }

  /**
   * A held blob's size, and a copy of its bytes from `offset` to the end into a destination
   * (not ended), through the store's copy (BlobStore.copyTo): two reused buffers, and a blob
   * not read since it was written is read around the page cache, as a first pull is. A GetBlob
   * for every target region of a new layer is such a read, and filling the cache cost this
   * machine more than the disk.
   */
  async openBlob(digestText: string, offset: number): Promise<{ size: number; copyTo(destination: Writable): Promise<void> }> {
    const digest = parseDigest(digestText);
    const info = await this.store.stat(digest);
    if (!info) throw new BlobUnknownError(`blob ${digest.value} is not held in this region`, { digest: digest.value });
    if (offset > info.size) throw new SizeInvalidError(`offset ${offset} is past the blob's ${info.size} bytes`);
    return {
      size: info.size,
      // An empty range is not a range: copy nothing rather than ask for start > end.
      copyTo: async (destination) => {
        if (offset < info.size) await this.store.copyTo(digest, { start: offset, end: info.size - 1 }, destination);
      },
    };
  }

  /** A manifest of the repository by digest or tag, with the clocks of its write and of the tag's. */
  async getManifest(repository: string, referenceText: string): Promise<ManifestCopy> {
    assertRepositoryName(repository);
    const reference = parseReference(referenceText);
    const lookup =
      reference.kind === 'tag'
        ? await this.metadata.manifests.findByTag(repository, reference.tag)
        : await this.metadata.manifests.findByDigest(repository, reference.digest.value);
    if (lookup.repositoryId === undefined) throw new NameUnknownError(`repository ${repository} is not known`);
    if (!lookup.found) throw new ManifestUnknownError(`manifest ${referenceText} is not in ${repository}`);
    const clock = await this.metadata.manifests.clockOf(lookup.repositoryId, lookup.found.digest);
    const tagClock = reference.kind === 'tag' ? await this.metadata.tags.clockOf(lookup.repositoryId, reference.tag) : undefined;
    return {
      digest: lookup.found.digest,
      mediaType: lookup.found.mediaType,
      payload: lookup.found.payload,
      clock: clock ?? { hlc: 0n, origin: '' },
      ...(tagClock ? { tagClock } : {}),
    };
  }

  /**
   * Stores a manifest replicated from another region, and points its tag at it if the write is
   * newer than the tag's. Verified as a push is (digest, image-spec); every blob and child
   * manifest it names must be held first, else ReplicaPreconditionError says what is missing.
   */
  async applyManifest(write: ReplicatedManifest): Promise<ApplyOutcome> {
    assertRepositoryName(write.repository);
    const expected = parseDigest(write.digest);
    const actual = digestOf(write.payload, expected.algorithm);
    if (actual !== expected.value) throw new DigestInvalidError(`manifest content has digest ${actual}, not ${expected.value}`);
    const parsed = parseManifest(write.payload, write.mediaType);
    if (write.tag !== undefined) parseReference(write.tag);
    const changes: MetadataChange[] = [{ kind: 'manifest', repository: write.repository, digest: expected.value }];
    if (write.tag !== undefined) changes.push({ kind: 'tag', repository: write.repository, tag: write.tag });

    const outcome = await this.metadata.transaction(async (tx) => {
      await refuseIfFenced(tx);
      await tx.lockName(write.repository, expected.value);
      if (write.tag !== undefined) await tx.lockName(write.repository, `tag:${write.tag}`);
      const repositoryId = await tx.repositories.ensure(write.repository);
      const blobs = await tx.blobs.sizesInRepository(repositoryId, parsed.blobReferences.map((d) => d.digest));
      const children = await tx.manifests.sizesInRepository(repositoryId, parsed.manifestReferences.map((d) => d.digest));
      const missing = {
        blobs: [...new Set(parsed.blobReferences.map((d) => d.digest).filter((digest) => !blobs.has(digest)))],
        manifests: await this.childrenToCome(tx, repositoryId, parsed.manifestReferences.map((d) => d.digest).filter((digest) => !children.has(digest))),
      };
      if (write.blobsOnDemand && missing.blobs.length > 0) {
        for (const descriptor of parsed.blobReferences) {
          if (blobs.has(descriptor.digest)) continue;
          await tx.blobs.linkPending(repositoryId, descriptor.digest, descriptor.size);
          blobs.set(descriptor.digest, descriptor.size);
        }
        missing.blobs = [];
      }
      if (missing.blobs.length + missing.manifests.length > 0) {
        throw new ReplicaPreconditionError(`manifest ${expected.value} names content ${write.repository} does not hold yet`, missing);
      }
      const stored = await tx.manifests.applyInsert(
        {
          repositoryId,
          digest: expected.value,
          mediaType: parsed.mediaType,
          payload: write.payload,
          ...(parsed.subject ? { subjectDigest: parsed.subject.digest } : {}),
          ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
          ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
          blobDigests: parsed.blobReferences.map((d) => d.digest),
          childDigests: parsed.manifestReferences.map((d) => d.digest),
        },
        write.clock,
      );
      const tagged = write.tag === undefined ? false : await tx.tags.applyPut(repositoryId, write.tag, stored?.id, write.clock);
      await tx.announce(changes);
      if (!stored) return { applied: false, detail: 'a newer delete of this manifest is known here' };
      if (write.tag !== undefined && !tagged) return { applied: true, detail: `manifest stored; tag ${write.tag} holds a newer write` };
      return { applied: true, detail: write.tag === undefined ? 'manifest stored' : `manifest stored and tagged ${write.tag}` };
    });
    for (const change of changes) this.cache.invalidate(change);
    return outcome;
  }

  /**
   * Of an index's child manifests the region does not hold, those it must wait for: not the ones
   * it knows were deleted. A delete of a child is decided by the clocks alone (ManifestStore.delete),
   * so an index that lists a deleted child is held, as it is in every region the delete reached
   * after the index; a newer put of the child, if there is one, brings it back here as anywhere.
   */
  private async childrenToCome(tx: MetadataTransaction, repositoryId: number, absent: readonly string[]): Promise<string[]> {
    const toCome: string[] = [];
    for (const digest of new Set(absent)) {
      if (!(await tx.manifests.tombstoneOf(repositoryId, digest))) toCome.push(digest);
    }
    return toCome;
  }

  /**
   * Applies a delete made in another region: a tag, a manifest (with the tags naming it written
   * before the delete), or a blob's link. A tag or manifest written here after the delete (a
   * newer clock) stays.
   */
  async applyDelete(kind: ReplicatedDeleteKind, repository: string, name: string, clock: ClockStamp): Promise<ApplyOutcome> {
    assertRepositoryName(repository);
    if (kind === 'tag') parseReference(name);
    const digest = kind === 'tag' ? undefined : parseDigest(name).value;
    const result = await this.metadata.transaction(async (tx) => {
      await refuseIfFenced(tx);
      await tx.lockName(repository, kind === 'tag' ? `tag:${name}` : digest!);
      const repositoryId = await tx.repositories.ensure(repository);
      const changes: MetadataChange[] = [];
      let outcome: ApplyOutcome;
      if (kind === 'tag') {
        const removed = await tx.tags.applyDelete(repositoryId, name, clock);
        if (removed) changes.push({ kind: 'tag', repository, tag: name });
        outcome = { applied: removed, detail: removed ? `tag ${name} deleted` : `tag ${name} absent or newer here` };
      } else if (kind === 'manifest') {
        // Never refused for an index listing it (see ManifestStore.delete): the clocks decide.
        const deleted = await tx.manifests.delete(repositoryId, digest!, { replicated: clock });
        if (deleted.deleted) changes.push({ kind: 'manifest', repository, digest: digest! });
        for (const tag of deleted.tags) changes.push({ kind: 'tag', repository, tag });
        outcome = { applied: deleted.deleted, detail: deleted.deleted ? `manifest ${digest} deleted` : `manifest ${digest} absent or newer here` };
      } else {
        const unlinked = await tx.blobs.unlink(repositoryId, digest!);
        if (unlinked) changes.push({ kind: 'blob', repository, digest: digest! });
        outcome = { applied: unlinked, detail: unlinked ? `blob ${digest} unlinked` : `blob ${digest} was not linked` };
      }
      await tx.announce(changes);
      return { outcome, changes };
    });
    for (const change of result.changes) this.cache.invalidate(change);
    return result.outcome;
  }

  /**
   * One page of what the region holds: manifests, then tags, then blob links, each in
   * (repository, name) order. The token names the kind and where the page ends.
   */
  async listInventory(pageToken: string | undefined, pageSize: number, options: { verify?: boolean } = {}): Promise<InventoryPage> {
    const { kind, after } = decodeInventoryToken(pageToken);
    const limit = Math.min(Math.max(pageSize || 500, 1), 5000);
    const page: InventoryPage = { kind, manifests: [], tags: [], blobs: [] };
    let last: InventoryCursor | undefined;
    let count: number;
    if (kind === 'manifests') {
      const rows = await this.metadata.inventory.manifests(limit, after);
      page.manifests = rows.map((row) => ({ ...row, clock: { hlc: BigInt(row.hlc), origin: row.origin } }));
      count = rows.length;
      last = rows.length ? [rows[rows.length - 1]!.repository, rows[rows.length - 1]!.digest] : undefined;
    } else if (kind === 'tags') {
      const rows = await this.metadata.inventory.tags(limit, after);
      page.tags = rows.map((row) => ({ repository: row.repository, tag: row.tag, digest: row.digest, clock: { hlc: BigInt(row.hlc), origin: row.origin } }));
      count = rows.length;
      last = rows.length ? [rows[rows.length - 1]!.repository, rows[rows.length - 1]!.tag] : undefined;
    } else {
      const rows = await this.metadata.inventory.blobs(limit, after);
      page.blobs = options.verify ? await this.verifyBlobs(rows) : rows;
      count = rows.length;
      last = rows.length ? [rows[rows.length - 1]!.repository, rows[rows.length - 1]!.digest] : undefined;
    }
    if (count === limit && last) {
      page.nextPageToken = encodeInventoryToken(kind, last);
    } else {
      const next = INVENTORY_KINDS[INVENTORY_KINDS.indexOf(kind) + 1];
      if (next) page.nextPageToken = encodeInventoryToken(next, undefined);
      // Read after every page: a write the pages show left the outbox only once the control
      // plane stored it, so an empty outbox now means the catalog knows all of them.
      else page.unrelayed = await this.metadata.outbox.backlog();
    }
    return page;
  }

  /**
   * One step of deleting everything the region holds, for a region removed from the cluster:
   * up to `pageSize` tags, else manifests, else blob links, else repositories (with their
   * tombstones and upload rows), else blobs no repository links, bytes first and then their rows,
   * so a step broken off leaves nothing reachable and the next step finishes it. Nothing goes
   * into the outbox. Refuses (ReplicaPreconditionError, nothing deleted) while the outbox holds
   * changes of the region's own, unless `discardUnrelayed`: they exist nowhere else. The last
   * step also removes every upload session and staging file. `dryRun` counts what is held.
   */
  async purge(options: { dryRun: boolean; pageSize: number; discardUnrelayed: boolean }): Promise<PurgeStep> {
    const unrelayed = await this.metadata.outbox.backlog();
    if (options.dryRun) {
      const held = await this.metadata.purge.held();
      return { counts: { ...held, discardedChanges: 0 }, unrelayed, done: !(await this.metadata.purge.anythingLeft()) };
    }
    if (unrelayed > 0 && !options.discardUnrelayed) {
      throw new ReplicaPreconditionError(`the region holds ${unrelayed} changes of its own that the control plane has not stored; they exist nowhere else`);
    }
    // Before anything is deleted, and for good (until the region is registered again): a worker
    // still applying a job here, one the control plane no longer sees running (its queue lock
    // lapsed), would otherwise put content back after the last step found the region empty.
    await this.metadata.transaction((tx) => tx.fence.close());
    const limit = Math.min(Math.max(options.pageSize || 500, 1), 5000);
    const counts = noPurgeCounts();
    if (unrelayed > 0) counts.discardedChanges = await this.metadata.outbox.discardAll();
    const changes = await this.metadata.transaction(async (tx) => {
      const tags = await tx.purge.deleteTags(limit);
      counts.tags = tags.length;
      const manifests = tags.length > 0 ? [] : await tx.purge.deleteManifests(limit);
      counts.manifests = manifests.length;
      const links = tags.length + manifests.length > 0 ? [] : await tx.purge.deleteBlobLinks(limit);
      counts.blobLinks = links.length;
      if (tags.length + manifests.length + links.length === 0) counts.repositories = await tx.purge.deleteRepositories(limit);
      const announced: MetadataChange[] = [
        ...tags.map((row) => ({ kind: 'tag' as const, repository: row.repository, tag: row.tag })),
        ...manifests.map((row) => ({ kind: 'manifest' as const, repository: row.repository, digest: row.digest })),
        ...links.map((row) => ({ kind: 'blob' as const, repository: row.repository, digest: row.digest })),
      ];
      await tx.announce(announced);
      return announced;
    });
    for (const change of changes) this.cache.invalidate(change);
    if (changes.length === 0 && counts.repositories === 0) {
      const blobs = await this.metadata.purge.unlinkedBlobs(limit);
      for (const blob of blobs) await this.store.delete(parseDigest(blob.digest));
      counts.blobs = await this.metadata.purge.forgetBlobs(blobs.map((blob) => blob.digest));
      counts.bytes = blobs.reduce((sum, blob) => sum + blob.size, 0);
    }
    const done = !(await this.metadata.purge.anythingLeft());
    if (done) await this.store.purgeStale(0);
    return { counts, unrelayed, done };
  }

  /**
   * Re-hashes the bytes of each blob of an inventory page (streamed, one blob at a time, so a
   * page of large layers costs a read of each, not memory). Bytes missing or hashing to another
   * digest turn the blob pending; corrupt bytes are removed as well, since a pending blob whose
   * file is back at the right size counts as found again (BlobService.confirm), and they must
   * never be served. Blobs the metadata already records pending stay so until a transfer comes.
   */
  private async verifyBlobs<Row extends { digest: string; size: number; state: 'present' | 'pending' }>(rows: readonly Row[]): Promise<Row[]> {
    const bad = new Set<string>();
    for (const digestText of new Set(rows.filter((row) => row.state === 'present').map((row) => row.digest))) {
      const digest = parseDigest(digestText);
      const problem = await this.checkBytes(digest);
      if (problem === undefined) continue;
      bad.add(digest.value);
      if (problem !== 'its file is missing') await this.store.delete(digest);
      this.log?.error({ digest: digest.value, problem }, `blob ${digest.value} failed verification (${problem}); it is no longer served until its bytes are replicated again`);
    }
    if (bad.size > 0) {
      const turned = await this.metadata.transaction(async (tx) => {
        const lost = await tx.blobs.markPending([...bad]);
        const changes: MetadataChange[] = [...lost].flatMap(([digest, repositories]) => repositories.map((repository) => ({ kind: 'blob' as const, repository, digest })));
        await tx.announce(changes);
        return changes;
      });
      for (const change of turned) this.cache.invalidate(change);
    }
    return rows.map((row) => (bad.has(row.digest) ? { ...row, state: 'pending' } : row));
  }

  /** Why a blob's stored bytes are not its digest's, or undefined when they are. */
  private async checkBytes(digest: Digest): Promise<string | undefined> {
    if (!(await this.store.stat(digest))) return 'its file is missing';
    const hash = createHash(digest.algorithm);
    try {
      const source = await this.store.read(digest);
      await pipeline(source, new Writable({ write: (chunk: Buffer, _encoding, done) => (hash.update(chunk), done()) }));
    } catch (err) {
      if (err instanceof BlobUnknownError) return 'its file is missing';
      throw err;
    }
    const actual = `${digest.algorithm}:${hash.digest('hex')}`;
    return actual === digest.value ? undefined : `its bytes hash to ${actual}`;
  }

  private async link(repository: string, blobs: ReadonlyArray<{ digest: string; size: number }>): Promise<void> {
    await linkCopiedBlobs(this.metadata, this.cache, repository, blobs, { replicated: true });
  }
}

/**
 * Records blobs whose verified bytes the store now holds, copied from another region, as present
 * and linked into the repository, and announces it to the region's caches. Not appended to the
 * outbox: the region the bytes came from recorded the link. `replicated`: a replicated write,
 * refused (ReplicaFencedError) by a region being purged.
 */
export async function linkCopiedBlobs(
  metadata: Metadata,
  cache: LookupCache,
  repository: string,
  blobs: ReadonlyArray<{ digest: string; size: number }>,
  options: { replicated?: boolean } = {},
): Promise<void> {
  const changes: MetadataChange[] = blobs.map((blob) => ({ kind: 'blob', repository, digest: blob.digest }));
  await metadata.transaction(async (tx) => {
    if (options.replicated) await refuseIfFenced(tx);
    const repositoryId = await tx.repositories.ensure(repository);
    for (const blob of blobs) await tx.blobs.link(repositoryId, blob.digest, blob.size);
    await tx.announce(changes);
  });
  for (const change of changes) cache.invalidate(change);
}

/**
 * A replicated write's first step in its transaction: refused once a purge has closed the fence,
 * and holding it open until the write commits, so a purge that begins meanwhile waits for it and
 * then deletes it with the rest (ReplicationFenceStore).
 */
async function refuseIfFenced(tx: MetadataTransaction): Promise<void> {
  if (await tx.fence.isClosed()) throw new ReplicaFencedError();
}

/**
 * The upload session a blob's replicated bytes gather in: one per digest, the same in every
 * process of the region, so a transfer broken off (the worker killed, a connection cut) resumes
 * where it stopped, whichever process receives the retry.
 */
export function transferId(digest: Digest): string {
  const hex = createHash('sha256').update(`meridian-replica-transfer:${digest.value}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function encodeInventoryToken(kind: InventoryKind, after: InventoryCursor | undefined): string {
  return Buffer.from(JSON.stringify(after ? [kind, ...after] : [kind])).toString('base64url');
}

function decodeInventoryToken(token: string | undefined): { kind: InventoryKind; after?: InventoryCursor } {
  if (!token) return { kind: 'manifests' };
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  if (!Array.isArray(decoded) || !INVENTORY_KINDS.includes(decoded[0]) || (decoded.length !== 1 && decoded.length !== 3)) {
    throw new ReplicaRequestError('malformed inventory page token');
  }
  const [kind, repository, name] = decoded as [InventoryKind, string?, string?];
  return typeof repository === 'string' && typeof name === 'string' ? { kind, after: [repository, name] } : { kind };
}


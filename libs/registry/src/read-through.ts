import { Transform, type Readable, type Writable } from 'node:stream';
import {
  BlobUnknownError,
  BlobUploadInvalidError,
  DigestInvalidError,
  SizeInvalidError,
  UploadRangeInvalidError,
  digestOf,
  parseDigest,
  type Digest,
} from '@meridian/oci';
import type { BlobStore } from '@meridian/blobstore';
import type { Metadata } from '@meridian/metadata';
import { compareClocks, type ClockStamp } from '@meridian/proto/clock';
import type { RegistryLogger } from './blobs.js';
import type { LookupCache } from './lookup-cache.js';
import { linkCopiedBlobs, transferId } from './replica.js';

/** A peer region that holds a blob's verified bytes. */
export interface PeerBlobHolder {
  region: string;
  size: number;
  /** The repository asked about links the blob in that region. */
  linked: boolean;
}

/** A manifest as a peer region holds it. */
export interface PeerManifest {
  region: string;
  digest: string;
  mediaType: string;
  payload: Buffer;
  /** The clock of the tag's write when asked by tag, else of the manifest's. */
  clock: ClockStamp;
}

/**
 * The other regions of the cluster, as read-through asks them (the gateway implements it over
 * the replica protocol, with the regions the control plane lists). No method throws for a peer
 * that is down, slow or does not answer: such a peer is left out of the answer.
 */
export interface RegionPeers {
  /** For each digest, the peers holding its verified bytes, nearest to this region first. */
  findBlobs(repository: string, digests: readonly string[]): Promise<Map<string, PeerBlobHolder[]>>;
  /**
   * The blob's bytes from `offset` to its end, from `region`. Rejects when the peer cannot
   * start sending; a peer that breaks off later ends the stream with an error.
   */
  openBlob(region: string, digest: string, offset: number): Promise<Readable>;
  /** What each peer holding the manifest answers (by tag or digest), unverified. */
  getManifests(repository: string, reference: string): Promise<PeerManifest[]>;
  /** This region's blob cache size when it is an edge region (it keeps blobs only as a cache); else undefined. */
  cacheBytes(): Promise<number | undefined>;
}

/**
 * Counts fills (`meridian_readthrough_fills_total{result}`), blob pulls served from this region's
 * own store or through a fill (`meridian_blob_cache_hits_total`, `_misses_total`), and blobs an
 * edge region evicted (`meridian_blob_cache_evictions_total`).
 */
export interface ReadThroughMetrics {
  fillFinished(result: 'ok' | 'failed'): void;
  blobServed?(from: 'local' | 'peer'): void;
  blobEvicted?(): void;
}

/**
 * A reader further behind the fill than this (bytes its destination has not taken yet) leaves
 * the live stream and reads the rest from the committed blob: one slow client must neither
 * slow the fill for the others nor make the process hold the blob for it.
 */
const LIVE_LAG_BYTES = 4 * 1024 * 1024;
/** Blobs whose last use the edge cache remembers; older ones count as never used. */
const MAX_USES_TRACKED = 100_000;
/** How long a fill waits for another writer of the same transfer that has stopped making progress. */
const OTHER_WRITER_IDLE_MS = 30_000;
/**
 * How many times a fill goes through its holders: a peer that breaks off (a connection cut, a
 * peer restarting) is asked again after the others, resuming where the transfer stopped.
 */
const FILL_ROUNDS = 3;

/** A reader of a blob being filled, served bytes as they arrive from the peer. */
interface LiveReader {
  /** The next byte it needs. */
  next: number;
  /** The last byte it may be sent before the blob is verified (see Fill). */
  last: number;
  destination: Writable;
  /** `Fill.discarded` when it was first sent bytes, if it has been. */
  sentIn?: number;
}

/**
 * One blob being copied in from a peer. Bytes go to the region's transfer session for the blob
 * (the one replicated transfers use, replica.ts transferId, so a fill and a worker's copy resume
 * each other) and, as they arrive, to the readers that joined before the bytes they need went by.
 * No reader is ever sent the blob's last byte before the whole has been verified against its
 * digest and committed: a client can never receive a complete body of the wrong bytes, only a
 * cut one.
 */
class Fill {
  /** Bytes of the blob received so far. */
  position = 0;
  /** How many times received bytes were thrown away (they did not hash to the digest). */
  discarded = 0;
  readonly readers = new Set<LiveReader>();
  committed!: Promise<void>;

  constructor(readonly size: number) {}

  /** Hands the bytes at `position` to the readers waiting for them. */
  deliver(chunk: Buffer): void {
    const start = this.position;
    this.position += chunk.length;
    for (const reader of this.readers) {
      if (reader.destination.destroyed || reader.destination.writableEnded) {
        this.readers.delete(reader);
        continue;
      }
      const from = reader.next - start;
      const to = Math.min(chunk.length, reader.last + 1 - start);
      if (from < 0) {
        // Bytes it needed went by before it joined (cannot happen: it joins only ahead of them).
        this.readers.delete(reader);
        continue;
      }
      if (to > from) {
        reader.sentIn ??= this.discarded;
        reader.destination.write(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
        reader.next += to - from;
      }
      if (reader.next > reader.last || reader.destination.writableLength > LIVE_LAG_BYTES) this.readers.delete(reader);
    }
  }
}

/**
 * Read-through: what a region does about content it should serve but does not hold yet (a blob
 * recorded pending while replication or a backfill copies it in, or content whose records have
 * not replicated here yet), by asking its peers (README, "Read-through and read-your-writes").
 *
 * A blob is filled from the nearest peer holding it and streamed to the client while it is
 * written to the region's store; concurrent requests for it in this process share that one fill.
 * Once verified and committed, the blob is present here like any replicated blob, linked into
 * the repository. A fill goes on when its clients leave (the bytes are wanted here anyway) and
 * never leaves a partial blob: bytes become the blob only once they hash to its digest.
 */
export class ReadThrough {
  private readonly fills = new Map<string, Fill>();
  /** Lookups of a blob's holders under way: concurrent requests for one blob share one round of questions. */
  private readonly lookups = new Map<string, Promise<PeerBlobHolder[]>>();
  /** Edge cache: when each blob was last served by this process (blobs never served count as oldest). */
  private readonly lastUsed = new Map<string, number>();
  /** Edge cache: blobs being sent by this process right now, never evicted underneath their readers. */
  private readonly pinned = new Map<string, number>();
  /** Edge cache: one eviction pass at a time. */
  private evicting: Promise<void> = Promise.resolve();

  constructor(
    private readonly peers: RegionPeers,
    private readonly metadata: Metadata,
    private readonly store: BlobStore,
    private readonly cache: LookupCache,
    private readonly log: RegistryLogger,
    private readonly metrics: ReadThroughMetrics = { fillFinished: () => undefined },
  ) {}

  /**
   * The peers a blob can be filled from, nearest first: any peer holding its bytes (of
   * `localSize`) when the repository here links it already, else only peers whose copy of the
   * repository links it (repositories stay isolated: read-through never widens what a
   * repository serves).
   */
  async holders(repository: string, digest: string, localSize: number | undefined): Promise<PeerBlobHolder[]> {
    const key = `${repository} ${digest}`;
    let lookup = this.lookups.get(key);
    if (!lookup) {
      lookup = this.peers.findBlobs(repository, [digest]).then((found) => found.get(digest) ?? []);
      this.lookups.set(key, lookup);
      void lookup.finally(() => this.lookups.delete(key)).catch(() => undefined);
    }
    const found = await lookup;
    return found.filter((holder) => (localSize === undefined ? holder.linked : holder.size === localSize));
  }

  /**
   * Of `digests` (blobs a manifest pushed here names, which this region lacks), those some peer
   * holds for the repository, with their sizes: the manifest may be accepted with them pending.
   */
  async heldElsewhere(repository: string, digests: readonly string[]): Promise<Map<string, number>> {
    const confirmed = new Map<string, number>();
    if (digests.length === 0) return confirmed;
    for (const [digest, holders] of await this.peers.findBlobs(repository, digests)) {
      const holder = holders.find((h) => h.linked);
      if (holder) confirmed.set(digest, holder.size);
    }
    return confirmed;
  }

  /**
   * The newest of the peers' answers for a manifest this region lacks, verified against its
   * digest, unless `newerHere` (the clock of a delete this region knows) is at least as new.
   */
  async manifest(repository: string, reference: string, newerHere?: ClockStamp): Promise<PeerManifest | undefined> {
    const answers = (await this.peers.getManifests(repository, reference)).filter((answer) => {
      try {
        const digest = parseDigest(answer.digest);
        if (digestOf(answer.payload, digest.algorithm) !== digest.value) return false;
        return !reference.includes(':') || reference === digest.value;
      } catch {
        return false;
      }
    });
    const newest = answers.sort((a, b) => compareClocks(b.clock, a.clock))[0];
    if (!newest || (newerHere && compareClocks(newerHere, newest.clock) >= 0)) return undefined;
    return newest;
  }

  /**
   * Writes bytes `range.start`..`range.end` of a blob this region lacks into `destination`,
   * filling it from `holders` (nearest first), or joining the fill of it already under way here.
   * Bytes are sent as they arrive when the range has not gone by yet, else once the blob is
   * committed. Rejects with BlobUnknownError when no peer could supply it before anything was
   * sent; after that, with the failure (the caller cuts the response).
   */
  async serve(
    repository: string,
    blob: { digest: Digest; size: number },
    holders: readonly PeerBlobHolder[],
    range: { start: number; end: number },
    destination: Writable,
  ): Promise<void> {
    await this.pinnedWhile(blob.digest.value, () => this.serveFilled(repository, blob, holders, range, destination));
  }

  private async serveFilled(
    repository: string,
    blob: { digest: Digest; size: number },
    holders: readonly PeerBlobHolder[],
    range: { start: number; end: number },
    destination: Writable,
  ): Promise<void> {
    const fill = this.fills.get(blob.digest.value) ?? this.start(repository, blob.digest, blob.size, holders);
    const reader: LiveReader = { next: range.start, last: Math.min(range.end, fill.size - 2), destination };
    if (fill.position <= reader.next && reader.next <= reader.last) fill.readers.add(reader);
    const gone = new Promise<never>((_resolve, reject) => {
      const closed = () => reject(Object.assign(new Error('the client went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
      if (destination.destroyed) closed();
      destination.once('close', closed);
    });
    gone.catch(() => undefined);
    try {
      await Promise.race([fill.committed, gone]);
    } finally {
      fill.readers.delete(reader);
    }
    // Bytes it was sent came from a copy that failed verification: only a cut response is honest.
    if (reader.sentIn !== undefined && reader.sentIn !== fill.discarded) {
      throw new DigestInvalidError(`blob ${blob.digest.value}: bytes sent from another region did not match the digest`);
    }
    if (reader.next <= range.end) await this.store.copyTo(blob.digest, { start: reader.next, end: range.end }, destination);
  }

  /** Counts a blob pull: served from this region's store (a cache hit) or through a fill (a miss). */
  countServed(from: 'local' | 'peer'): void {
    this.metrics.blobServed?.(from);
  }

  /** Records a use of a blob this region holds (the edge cache evicts the least recently used). */
  touch(digest: string): void {
    this.lastUsed.delete(digest);
    this.lastUsed.set(digest, Date.now());
    // Bounded: the map keeps the order of use, so the entry dropped is the least recently used.
    if (this.lastUsed.size > MAX_USES_TRACKED) this.lastUsed.delete(this.lastUsed.keys().next().value!);
  }

  /** Runs `send` with the blob kept from eviction until it ends. */
  async pinnedWhile<T>(digest: string, send: () => Promise<T>): Promise<T> {
    this.pinned.set(digest, (this.pinned.get(digest) ?? 0) + 1);
    try {
      return await send();
    } finally {
      const left = this.pinned.get(digest)! - 1;
      if (left === 0) this.pinned.delete(digest);
      else this.pinned.set(digest, left);
    }
  }

  /**
   * An edge region over its cache size evicts the least recently used blobs, never one being
   * sent or filled here, until it is back under: each is recorded pending first (so it is filled
   * again on demand from then on), then its bytes are removed.
   */
  private evictOverCache(): Promise<void> {
    const pass = this.evicting.then(async () => {
      const limit = await this.peers.cacheBytes();
      if (limit === undefined) return;
      let held = Number(await this.metadata.blobs.storedBytes());
      if (held <= limit) return;
      const oldestFirst = (await this.metadata.blobs.presentBlobs()).sort((a, b) => (this.lastUsed.get(a.digest) ?? 0) - (this.lastUsed.get(b.digest) ?? 0));
      for (const blob of oldestFirst) {
        if (held <= limit) break;
        if (this.pinned.has(blob.digest) || this.fills.has(blob.digest)) continue;
        const changes = await this.metadata.transaction(async (tx) => {
          const turned = await tx.blobs.markPending([blob.digest]);
          const evicted = [...turned].flatMap(([digest, repositories]) => repositories.map((repository) => ({ kind: 'blob' as const, repository, digest })));
          await tx.announce(evicted);
          return evicted;
        });
        for (const change of changes) this.cache.invalidate(change);
        await this.store.delete(parseDigest(blob.digest));
        this.lastUsed.delete(blob.digest);
        this.metrics.blobEvicted?.();
        held -= blob.size;
      }
      this.log.info({ held, limit }, `edge cache: evicted down to ${held} of ${limit} bytes`);
    });
    this.evicting = pass.catch(() => undefined);
    return pass;
  }

  private start(repository: string, digest: Digest, size: number, holders: readonly PeerBlobHolder[]): Fill {
    const fill = new Fill(size);
    fill.committed = this.run(fill, repository, digest, holders).finally(() => this.fills.delete(digest.value));
    // Its readers hear how it ended; the fill itself must not count as an unheard rejection.
    fill.committed.catch(() => undefined);
    this.fills.set(digest.value, fill);
    return fill;
  }

  /**
   * Copies the blob from the first holder that supplies it whole and verified; one that breaks
   * off hands over to the next, which resumes where the transfer stopped. Then records the blob
   * present and linked into the repository.
   */
  private async run(fill: Fill, repository: string, digest: Digest, holders: readonly PeerBlobHolder[]): Promise<void> {
    const id = transferId(digest);
    const failures: string[] = [];
    try {
      for (const holder of Array.from({ length: FILL_ROUNDS }, () => holders).flat()) {
        let offset = await this.store.uploadSize(id);
        if (offset > fill.size) {
          await this.store.cancelUpload(id);
          fill.discarded++;
          offset = 0;
        }
        fill.position = offset;
        let received: number;
        const broken: { error?: Error } = {};
        try {
          this.log.info({ digest: digest.value, repository, source: holder.region, offset }, `read-through: fetching ${digest.value} from ${holder.region}`);
          const source = await this.peers.openBlob(holder.region, digest.value, offset);
          received = await this.store.appendUpload(id, this.tapped(source, fill, (err) => (broken.error = err)), { start: offset });
        } catch (err) {
          if (err instanceof BlobUploadInvalidError || err instanceof UploadRangeInvalidError) {
            // Another writer holds the transfer, or wrote to it since it was measured: the
            // replication worker's copy, or a fill in another gateway process of the region.
            // Its bytes become the blob once verified.
            await this.otherWriter(digest, fill.size, id);
            break;
          }
          failures.push(`${holder.region}: ${(err as Error).message}`);
          continue;
        }
        if (received < fill.size) {
          failures.push(`${holder.region}: sent ${received - offset} bytes from ${offset} of ${fill.size}${broken.error ? ` (${broken.error.message})` : ''}`);
          continue;
        }
        try {
          await this.store.completeUpload(id, digest, { expectedSize: fill.size });
        } catch (err) {
          if (err instanceof BlobUploadInvalidError) {
            await this.otherWriter(digest, fill.size, id);
            break;
          }
          if (!(err instanceof DigestInvalidError || err instanceof SizeInvalidError)) throw err;
          // A replicated copy finished the same transfer between the last append and this close:
          // its check covered the bytes this fill wrote, and the blob is in place.
          if ((await this.store.confirm(digest, fill.size)).held) break;
          // The session is discarded: the next holder starts afresh.
          fill.discarded++;
          failures.push(`${holder.region}: ${err.message}`);
          continue;
        }
        break;
      }
      if (!(await this.store.confirm(digest, fill.size)).held) {
        throw new BlobUnknownError(`blob ${digest.value} could not be filled from another region: ${failures.join('; ') || 'no region holds it'}`, {
          digest: digest.value,
        });
      }
      await linkCopiedBlobs(this.metadata, this.cache, repository, [{ digest: digest.value, size: fill.size }]);
    } catch (err) {
      this.metrics.fillFinished('failed');
      this.log.error({ digest: digest.value, repository, failures, err }, `read-through fill of ${digest.value} failed`);
      throw err;
    }
    this.metrics.fillFinished('ok');
    this.log.info({ digest: digest.value, repository, size: fill.size, failures }, `read-through fill of ${digest.value} done`);
    this.touch(digest.value);
    // Not awaited: the fill's readers need not wait for it (they are pinned meanwhile).
    void this.evictOverCache().catch((err) => this.log.error({ err }, 'edge cache: evicting failed'));
  }

  /**
   * The peer's bytes on their way to the store, handed to the fill's readers as they pass. A
   * peer that breaks off ends the stream instead of failing it, so that the bytes received are
   * kept and the next holder resumes after them.
   */
  private tapped(source: Readable, fill: Fill, onBroken: (err: Error) => void): Readable {
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        fill.deliver(chunk);
        done(null, chunk);
      },
    });
    source.once('error', (err) => {
      onBroken(err);
      source.unpipe(tap);
      tap.end();
    });
    // The store stopping early (a disk fault) must not leave the peer's stream open.
    tap.once('close', () => source.destroy());
    source.pipe(tap);
    return tap;
  }

  /** Waits until another writer of the blob's transfer commits it, for as long as that transfer keeps growing. */
  private async otherWriter(digest: Digest, size: number, id: string): Promise<void> {
    let seen = -1;
    let movedAt = Date.now();
    while (!(await this.store.confirm(digest, size)).held) {
      const now = await this.store.uploadSize(id);
      if (now !== seen) [seen, movedAt] = [now, Date.now()];
      else if (Date.now() - movedAt > OTHER_WRITER_IDLE_MS) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

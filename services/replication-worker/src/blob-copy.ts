import { grpc, type PutBlobRequest } from '@meridian/proto';
import { hasStatus, isRetryable, type JudgedError } from './grpc-errors.js';
import type { ReplicaPeer } from './replica-peer.js';
import type { BlobPiece, SharedReads } from './shared-reads.js';
import { awaitOtherTransfer, isTransferBusy } from './transfer-wait.js';

/**
 * Blob bytes from a region that holds them to one that does not. The target fetches them from
 * the source itself (FetchBlob, replica.proto): the bytes cross one hop, source to target, and
 * none passes through this process, which relayed every byte of a layer once per target and
 * was the copy's bottleneck (e2e/bench/README.md, "pnpm bench replication"). A target that
 * cannot fetch (UNIMPLEMENTED: it has no peers) gets the bytes relayed: GetBlob on a source
 * piped into PutBlob on the target. Memory stays bounded whatever the blob's size: a chunk
 * is read from the source only when the target's stream has taken the previous ones (write()
 * returning false pauses the source until 'drain'), so at most the two streams' own buffers
 * (a few chunks of BLOB_CHUNK_BYTES each) are held.
 *
 * Copies resume: the target keeps the verified bytes of a broken PutBlob and LinkBlobs reports
 * how many, so a copy (in this attempt with another source, or in a later attempt of the job)
 * sends only the rest.
 */

export interface BlobRef {
  digest: string;
  size: number;
}

export interface CopyContext {
  target: ReplicaPeer;
  /** Regions to read from, best first (region-directory.ts sourceOrder). */
  sources: ReplicaPeer[];
  /** Shared by every job of the process. */
  copies: CopiesUnderWay;
  /** Shared by every job of the process: one read of a blob from a source feeds every copy that needs it meanwhile. */
  reads: SharedReads;
  signal: AbortSignal;
  /**
   * The target is an edge region (its record has `cacheBytes`): it takes blobs only on demand,
   * so none is copied to it, and manifests are applied with `blobsOnDemand`.
   */
  blobsOnDemand?: boolean;
}

/**
 * The blob copies this process has under way, by target and digest. A job that needs a blob
 * another job is already sending to the same target waits for that copy instead of starting its
 * own: the target lets one transfer write a blob at a time, so a second would be refused
 * (ABORTED) and spend an attempt, over and over for as long as a large blob takes. Common base
 * layers make this the usual case while a new region is backfilled.
 */
export class CopiesUnderWay {
  private readonly copies = new Map<string, Promise<number>>();

  /** Runs `copy`, or, if the same copy is under way, waits for it to end (however it ends) and answers undefined. */
  async run(target: string, digest: string, signal: AbortSignal, copy: () => Promise<number>): Promise<number | undefined> {
    const key = `${target} ${digest}`;
    const running = this.copies.get(key);
    if (running) {
      await new Promise<void>((resolve, reject) => {
        const aborted = () => reject(signal.reason);
        signal.addEventListener('abort', aborted, { once: true });
        const ended = () => {
          signal.removeEventListener('abort', aborted);
          resolve();
        };
        running.then(ended, ended);
      });
      return undefined;
    }
    const promise = copy();
    this.copies.set(key, promise);
    try {
      return await promise;
    } finally {
      this.copies.delete(key);
    }
  }
}

/** How many times one blob's copy waits for another sender's transfer that then stalls, before the refusal counts as the attempt's failure. */
const MAX_TRANSFER_WAITS = 3;

/** No source could serve a blob. Retried (a region may be back, or receive the blob, later) unless every source failed for good. */
export class BlobUnavailableError extends Error implements JudgedError {
  constructor(
    readonly digest: string,
    /** True when every source answered NOT_FOUND: no region holds the bytes any more. */
    readonly nowhere: boolean,
    readonly retryable: boolean,
    failures: string[],
  ) {
    super(`no region could serve ${digest}: ${failures.join('; ') || 'no source region'}`);
  }
}

/**
 * Makes every blob of `blobs` present in `repository` on the target: LinkBlobs links what the
 * target already holds, and the rest is copied, one blob after another (parallelism comes from
 * running several jobs). Returns the bytes sent to the target.
 */
export async function ensureBlobs(repository: string, blobs: BlobRef[], context: CopyContext): Promise<number> {
  const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
  if (unique.length === 0) return 0;
  const holdings = await context.target.linkBlobs(repository, unique, context.signal);
  let sent = 0;
  for (const blob of unique) {
    let holding = holdings.find((h) => h.digest === blob.digest);
    let waits = 0;
    while (!holding?.held) {
      const offset = Number(holding?.offset ?? 0);
      let copied: number | undefined;
      try {
        copied = await context.copies.run(context.target.name, blob.digest, context.signal, () => copyBlob(repository, blob, offset, context));
      } catch (err) {
        // Another worker process is sending this blob to the target: take its result rather
        // than spend an attempt. A transfer that keeps stalling is a failure after all.
        if (!isTransferBusy(err) || ++waits > MAX_TRANSFER_WAITS) throw err;
        holding = await awaitOtherTransfer(context.target, repository, blob, context.signal);
        continue;
      }
      if (copied !== undefined) {
        sent += copied;
        break;
      }
      // Another job's copy ended: link its bytes here, or learn where it stopped and go on from there.
      [holding] = await context.target.linkBlobs(repository, [blob], context.signal);
    }
  }
  return sent;
}

/**
 * Copies one blob the target does not hold, from `offset` (what LinkBlobs reported), trying each
 * source in turn. A source that fails (down, not holding it, DATA_LOSS) gives way to the next,
 * which resumes from whatever the target kept. A failure on the target's side ends the copy
 * with that failure, except once after a resume: when the target refuses the bytes as a whole
 * (they do not hash to the digest), since the bytes kept from an earlier source may be the bad
 * ones, or no longer holds the offset LinkBlobs reported (FAILED_PRECONDITION), the copy starts
 * again from the offset the target then reports. The second happens when a source fails after
 * sending every byte: the target takes the broken stream for a whole one, and may still be
 * verifying those bytes (and then dropping them) when LinkBlobs asks where to resume.
 */
export async function copyBlob(repository: string, blob: BlobRef, offset: number, context: CopyContext): Promise<number> {
  const failures: { source: string; error: unknown }[] = [];
  let sent = 0;
  let restarted = false;
  let relay = false;
  for (let i = 0; i < context.sources.length; ) {
    const source = context.sources[i]!;
    let attempt = relay ? undefined : await fetchBlob(source, repository, blob, context);
    if (!attempt) {
      relay = true;
      attempt = await streamBlob(source, repository, blob, offset, context);
    }
    sent += attempt.sent;
    if (attempt.result === 'ok') return sent;
    if (attempt.result === 'target') {
      const refusedResume = hasStatus(attempt.error, grpc.status.INVALID_ARGUMENT) || hasStatus(attempt.error, grpc.status.FAILED_PRECONDITION);
      if (!(refusedResume && offset > 0 && !restarted)) throw attempt.error;
      restarted = true;
    } else {
      failures.push({ source: source.name, error: attempt.error });
      i++;
    }
    const [holding] = await context.target.linkBlobs(repository, [blob], context.signal);
    if (holding?.held) return sent;
    offset = Number(holding?.offset ?? 0);
  }
  const nowhere = failures.length > 0 && failures.every((f) => hasStatus(f.error, grpc.status.NOT_FOUND));
  // Every source failing for good (DATA_LOSS everywhere) will not mend; anything else may.
  const retryable = failures.length === 0 || failures.some((f) => isRetryable(f.error));
  throw new BlobUnavailableError(
    blob.digest,
    nowhere,
    retryable,
    failures.map((f) => `${f.source}: ${(f.error as Error).message}`),
  );
}

type StreamResult = { result: 'ok'; sent: number } | { result: 'source' | 'target'; sent: number; error: unknown };

/**
 * One FetchBlob: the target reads the blob from `source` and takes it from the bytes it already
 * holds. Settles as streamBlob does (a source failure comes back in the reply, with the status
 * the source answered); undefined when the target cannot fetch, for the caller to relay.
 */
async function fetchBlob(source: ReplicaPeer, repository: string, blob: BlobRef, context: CopyContext): Promise<StreamResult | undefined> {
  try {
    const reply = await context.target.fetchBlob({ repository, digest: blob.digest, size: blob.size, source: source.name }, context.signal);
    const sent = Number(reply.received);
    if (reply.sourceCode === grpc.status.OK) return { result: 'ok', sent };
    const error = Object.assign(new Error(reply.sourceDetail), { code: reply.sourceCode, details: reply.sourceDetail });
    return { result: 'source', sent, error };
  } catch (err) {
    if (hasStatus(err, grpc.status.UNIMPLEMENTED)) return undefined;
    return { result: 'target', sent: 0, error: err };
  }
}

/**
 * One GetBlob → PutBlob stream; settles with the side that failed first, having cancelled both
 * calls (leaving the read, which goes on for the other copies sharing it). PutBlob opens only once the source has sent its first chunk, so a source that is down
 * or lacks the blob leaves no upload behind on the target for the next source to collide with.
 */
function streamBlob(source: ReplicaPeer, repository: string, blob: BlobRef, offset: number, context: CopyContext): Promise<StreamResult> {
  const { signal, target } = context;
  return new Promise((resolve) => {
    let sent = 0;
    let settled = false;
    let put: grpc.ClientWritableStream<PutBlobRequest> | undefined;
    const aborted = () => settle('target', signal.reason);
    const settle = (result: 'ok' | 'source' | 'target', error?: unknown) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', aborted);
      if (result !== 'ok') put?.cancel();
      // On success too: a target that already held the blob answers before the source is done.
      get.cancel();
      resolve(result === 'ok' ? { result, sent } : { result, sent, error });
    };
    const openPut = () => {
      const stream = target.putBlob((err) => (err ? settle('target', err) : settle('ok')));
      stream.on('error', (err) => settle('target', err));
      stream.write({ header: { repository, digest: blob.digest, size: blob.size, offset } });
      return stream;
    };

    // The source's read of the blob, shared with the copies of it to other targets under way (shared-reads.ts).
    const get = context.reads.open(source, blob.digest, offset);
    get.on('error', (err) => settle('source', err));
    get.on('data', (chunk: BlobPiece) => {
      if (settled) return;
      if (!put) {
        if (Number(chunk.size) !== blob.size) {
          settle('source', new Error(`${source.name} holds ${blob.digest} with ${chunk.size} bytes, not ${blob.size}`));
          return;
        }
        put = openPut();
      }
      sent += chunk.data.length;
      if (!put.write({ chunk: chunk.data })) {
        get.pause();
        put.once('drain', () => get.resume());
      }
    });
    get.on('end', () => {
      if (settled) return;
      (put ??= openPut()).end();
    });
    signal.addEventListener('abort', aborted, { once: true });
    if (signal.aborted) aborted();
  });
}

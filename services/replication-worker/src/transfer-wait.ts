import { setTimeout as sleep } from 'node:timers/promises';
import { grpc } from '@meridian/proto';
import { hasStatus } from './grpc-errors.js';
import type { BlobRef } from './blob-copy.js';
import type { BlobHolding, ReplicaPeer } from './replica-peer.js';

/** How often the target is asked how far another sender's transfer has got. */
const POLL_MS = 250;
/**
 * A transfer whose verified offset has not moved for this long is taken to have stopped (its
 * sender died or gave up): the waiting job then sends the blob itself. Long enough for the
 * target to hash a large blob once its last byte came (the offset stands still meanwhile).
 */
const STALLED_MS = 15_000;

/**
 * Whether the target refused a PutBlob because another transfer holds the blob: a region lets
 * one PutBlob at a time write a given blob and answers ABORTED to the next (replica.proto,
 * "Errors"). Several worker processes replicating one change set meet this whenever two of
 * their jobs need the same layer in the same region; within one process CopiesUnderWay keeps
 * it from happening.
 */
export function isTransferBusy(err: unknown): boolean {
  return hasStatus(err, grpc.status.ABORTED);
}

/**
 * Waits while another sender's transfer of `blob` into the target makes progress, and takes its
 * result: resolves with the target's holding once the blob is held (LinkBlobs has then linked it
 * into `repository` as well), or once the transfer has stood still for STALLED_MS, with the
 * offset it left, for the caller to go on from. Rejects when `signal` aborts.
 */
export async function awaitOtherTransfer(target: ReplicaPeer, repository: string, blob: BlobRef, signal: AbortSignal): Promise<BlobHolding | undefined> {
  let offset = -1;
  let movedAt = Date.now();
  for (;;) {
    const [holding] = await target.linkBlobs(repository, [blob], signal);
    if (!holding || holding.held) return holding;
    if (Number(holding.offset) !== offset) {
      offset = Number(holding.offset);
      movedAt = Date.now();
    } else if (Date.now() - movedAt >= STALLED_MS) {
      return holding;
    }
    await sleep(POLL_MS, undefined, { signal });
  }
}

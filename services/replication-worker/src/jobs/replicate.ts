import { JobName, REPLICATION_TARGET_STATES, ReplicateJobSchema, type ReplicatedChange, type ReplicateJob, type ReplicationOutcome } from '@meridian/proto';
import { BlobUnavailableError, ensureBlobs, type CopyContext } from '../blob-copy.js';
import type { ControlPlaneClient } from '../control-plane-client.js';
import { PermanentError } from '../grpc-errors.js';
import { replicateManifest } from '../manifest-copy.js';
import { sourceOrder, type RegionDirectory } from '../region-directory.js';
import type { RegionLimiter } from '../region-limiter.js';
import type { ReplicaPeers } from '../replica-peer.js';
import type { JobContext, JobHandler } from './index.js';
import type { WorkerMetrics } from '../metrics.js';
import { SpanKind, inSpanOf } from '@meridian/telemetry';

/** `copies` and `reads` are the process's own, shared by every job (blob-copy.ts). */
export interface ReplicateDependencies extends Pick<CopyContext, 'copies' | 'reads'> {
  regions: RegionDirectory;
  peers: ReplicaPeers;
  limiter: RegionLimiter;
  controlPlane: Pick<ControlPlaneClient, 'report'>;
  metrics: Omit<WorkerMetrics, 'metrics'>;
}

/**
 * `replicate`: bring one change of one origin region to one target region, then tell the control
 * plane how it went. A target that is no longer adding or active is `dropped` without a call to
 * it; the work itself holds one of the target's slots (region-limiter.ts) from start to end.
 */
export function createReplicateHandler(deps: ReplicateDependencies): JobHandler<ReplicateJob> {
  return {
    name: JobName.Replicate,

    parse(data) {
      const parsed = ReplicateJobSchema.safeParse(data);
      if (!parsed.success) throw new PermanentError(`not a replicate job: ${parsed.error.message}`);
      return parsed.data;
    },

    run(job, context) {
      // The job continues the trace of the push that made the change (its data carries it).
      const attributes = { 'meridian.target_region': job.region, 'meridian.origin_region': job.change.origin, 'meridian.change_id': job.changeId, 'meridian.change_kind': job.change.body.kind, 'meridian.attempt': context.attempt };
      return inSpanOf(job.change.trace, 'replication.job', { kind: SpanKind.CONSUMER, attributes }, () => replicate(job, context));
    },

    async giveUp(job, error, attempt) {
      await deps.controlPlane.report(job.changeId, job.region, { outcome: 'failed', error: error.message.slice(0, 4000), attempts: attempt });
      deps.metrics.jobsFinished.inc({ target_region: job.region, outcome: 'failed' });
    },
  };

  async function replicate(job: ReplicateJob, { signal, log, attempt }: JobContext): Promise<void> {
    const regions = await deps.regions.regions();
    const target = regions.find((r) => r.name === job.region);
    if (!target || !REPLICATION_TARGET_STATES.has(target.state)) {
      log.info({ state: target?.state ?? 'gone' }, 'target no longer takes replication: dropped');
      await deps.controlPlane.report(job.changeId, job.region, { outcome: 'dropped', attempts: attempt });
      deps.metrics.jobsFinished.inc({ target_region: job.region, outcome: 'dropped' });
      return;
    }
    const context: CopyContext = {
      target: deps.peers.peer(target),
      sources: sourceOrder(regions, job.change.origin, target).map((r) => deps.peers.peer(r)),
      copies: deps.copies,
      reads: deps.reads,
      signal,
      blobsOnDemand: target.cacheBytes !== undefined,
    };
    const outcome = await deps.limiter.run(target.name, signal, () => applyChange(job.change, context));
    // Applied now, whenever the control plane hears of it. A backfill brings old content to a new
    // region: how long ago it was committed is not how far replication lags.
    if (outcome.outcome === 'done' && !job.backfill) deps.metrics.replicationLag.observe({ target_region: job.region }, Math.max(0, Date.now() - Date.parse(job.change.at)) / 1000);
    log.info({ outcome: outcome.outcome, bytes: outcome.bytes }, 'replicated');
    await deps.controlPlane.report(job.changeId, job.region, { ...outcome, attempts: attempt });
    deps.metrics.jobsFinished.inc({ target_region: job.region, outcome: outcome.outcome });
    if (outcome.bytes) deps.metrics.bytesCopied.inc({ target_region: job.region }, outcome.bytes);
  }
}

/** One change, applied to the target through the replica protocol. */
async function applyChange(change: ReplicatedChange, context: CopyContext): Promise<ReplicationOutcome> {
  const clock = { hlc: change.hlc, origin: change.origin };
  const body = change.body;
  switch (body.kind) {
    case 'blob.link':
      // An edge region fills blobs itself when they are asked of it.
      if (context.blobsOnDemand) return { outcome: 'done', bytes: 0 };
      try {
        return { outcome: 'done', bytes: await ensureBlobs(body.repository, [{ digest: body.digest, size: body.size }], context) };
      } catch (err) {
        // No region holds the bytes any more: the blob was deleted after it was linked.
        if (err instanceof BlobUnavailableError && err.nowhere) return { outcome: 'superseded' };
        throw err;
      }
    case 'manifest.put':
      return replicateManifest(body, clock, context);
    case 'manifest.delete':
      await context.target.applyDelete({ kind: 'MANIFEST', repository: body.repository, name: body.digest, clock }, context.signal);
      return { outcome: 'done', bytes: 0 };
    case 'tag.delete':
      await context.target.applyDelete({ kind: 'TAG', repository: body.repository, name: body.tag, clock }, context.signal);
      return { outcome: 'done', bytes: 0 };
    case 'blob.unlink':
      await context.target.applyDelete({ kind: 'BLOB', repository: body.repository, name: body.digest, clock }, context.signal);
      return { outcome: 'done', bytes: 0 };
  }
}

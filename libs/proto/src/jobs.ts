import { z } from 'zod';
import { ReplicatedChangeSchema } from './changes.js';

/**
 * What the control plane and the replication worker agree on: the BullMQ queue and job names,
 * the job payload, the job id, how the worker reports an outcome, and the region record it reads
 * from the control plane's admin API. Both services import these; neither spells them itself.
 */

/** The one replication queue (a string constant: CONTRIBUTING.md, 'Naming'). */
export const REPLICATION_QUEUE = 'meridian-replication';

/**
 * BullMQ's own default key prefix: a worker or control plane that sets none agrees with one that
 * does not change it (both take MERIDIAN_QUEUE_PREFIX to share a Redis between clusters).
 */
export const DEFAULT_QUEUE_PREFIX = 'bull';

/** Job names on REPLICATION_QUEUE. The worker refuses to start unless each has exactly one handler. */
export const JobName = {
  /** Bring one change to one target region. */
  Replicate: 'replicate',
} as const;
export type JobName = (typeof JobName)[keyof typeof JobName];

/** Region names, as the gateway's MERIDIAN_REGION accepts them. */
export const RegionNameSchema = z.string().regex(/^[a-z0-9-]{1,63}$/, 'lower-case letters, digits and "-", 1 to 63 characters');

/** The control plane's id of a stored change: a decimal string (a Postgres bigserial). */
export const ChangeIdSchema = z.string().regex(/^[1-9]\d{0,18}$/, 'a positive decimal integer');

/** The payload of a `replicate` job: one change, one target region. */
export const ReplicateJobSchema = z.object({
  changeId: ChangeIdSchema,
  region: RegionNameSchema,
  change: ReplicatedChangeSchema,
  /**
   * Part of the backfill that brings a new region the catalog it missed: old content, so the
   * time since its commit says nothing of replication lag, and the worker leaves it out of the
   * lag histogram.
   */
  backfill: z.boolean().optional(),
});
export type ReplicateJob = z.infer<typeof ReplicateJobSchema>;

/**
 * The BullMQ job id of (change, target region). Deterministic, so adding the same work twice (a
 * requeue, a retried request) is one job. BullMQ refuses ':' in custom ids (it separates the
 * parts of its Redis keys) and ids that are integers; this has neither.
 */
export function replicateJobId(changeId: string, region: string): string {
  return `replicate-${changeId}-${region}`;
}

/**
 * Options of every `replicate` job, set by the control plane when it adds one. A job that keeps
 * failing is retried with exponential back-off (0.5 s, 1 s, 2 s, ... about 17 minutes in all);
 * the worker reports `failed` once the last attempt fails. Finished jobs leave Redis: Postgres
 * keeps the outcome, and a row still pending is added again by the control plane's requeue.
 */
export const REPLICATE_JOB_OPTIONS = {
  attempts: 12,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: true,
  removeOnFail: true,
} as const;

/**
 * What the worker reports for a (change, region), POSTed to
 * `/api/v1/replication/:changeId/:region`:
 * - `done`: the target holds the change (`bytes` = blob bytes copied for it);
 * - `failed`: BullMQ gave up (attempts exhausted); `error` is the last error;
 * - `superseded`: nothing left to do, a later change replaced it (the manifest was deleted since);
 * - `dropped`: the target is no longer a replication target (draining or removed).
 */
export const ReplicationOutcomeSchema = z.object({
  outcome: z.enum(['done', 'failed', 'superseded', 'dropped']),
  error: z.string().max(4000).optional(),
  bytes: z.number().int().nonnegative().optional(),
  /** Attempts the worker made (BullMQ's attemptsMade), for the status display. */
  attempts: z.number().int().nonnegative().optional(),
});
export type ReplicationOutcome = z.infer<typeof ReplicationOutcomeSchema>;

/**
 * A region's life: `adding` while its backfill runs (it already receives new changes), `active`
 * once caught up, `draining` after removal (no new work targets it).
 */
export const RegionStateSchema = z.enum(['adding', 'active', 'draining']);
export type RegionState = z.infer<typeof RegionStateSchema>;

/** States in which a region receives replication; a job for a region in any other state (or gone) is dropped. */
export const REPLICATION_TARGET_STATES: ReadonlySet<RegionState> = new Set(['adding', 'active']);

/** One region as `GET /api/v1/regions` lists it. */
export const RegionRecordSchema = z.object({
  name: RegionNameSchema,
  /** The gateway's base URL (what clients push to and pull from). */
  http: z.string(),
  /** host:port of the region's Replica gRPC service. */
  grpc: z.string(),
  lat: z.number(),
  lon: z.number(),
  state: RegionStateSchema,
  /**
   * The operator's switch for nearest-region routing (`meridian region routing NAME on|off`): off,
   * the router sends no client to the region, which goes on taking replication as its state says.
   */
  routing: z.boolean(),
  /**
   * Set for an edge region: the bytes of blobs it may keep. It receives manifests and tags as
   * every region does, blobs only on demand (read-through), least recently used ones evicted.
   */
  cacheBytes: z.number().int().positive().optional(),
  /** Last heartbeat of the region's relay (ISO 8601), null if none yet. */
  heartbeatAt: z.string().nullable(),
  /** Progress of the backfill that brought the region the catalog; null if it had none. */
  backfill: z
    .object({
      /** Items no longer pending (done, failed, superseded or dropped). */
      done: z.number().int().nonnegative(),
      /** Of `done`, those that failed (attempts exhausted). */
      failed: z.number().int().nonnegative(),
      total: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
      etaSeconds: z.number().nonnegative().nullable(),
    })
    .nullable(),
});
export type RegionRecord = z.infer<typeof RegionRecordSchema>;

export const RegionListSchema = z.object({ regions: z.array(RegionRecordSchema) });
export type RegionList = z.infer<typeof RegionListSchema>;

/** Where a tag or manifest stands in one region, as `GET /api/v1/replication/status` reports it. */
export interface RegionReplicationStatus {
  name: string;
  /** present: the region holds it (it wrote it, or the write was applied there). */
  state: 'present' | 'pending' | 'failed' | 'absent';
  /** When failed: the last error. */
  error?: string;
  attempts?: number;
  /** When that state was reached (for the origin: when it wrote it); null when absent. */
  updatedAt: string | null;
}

/** One tag (or, asked by digest, one manifest: `tag` null) and where it stands in each region. */
export interface ReferenceStatus {
  tag: string | null;
  digest: string;
  regions: RegionReplicationStatus[];
}

import { grpc, type ReplicaDialer, type PurgeCounts, type PurgeReply__Output, type PurgeStep, type RegionRecord } from '@meridian/proto';

/** Purge calls to one region (replica.proto `Purge`), over one connection. Each rejects with the call's gRPC error. */
export interface RegionPurgeSession {
  step(request: { dryRun: boolean; discardUnrelayed: boolean }): Promise<PurgeStep>;
  close(): void;
}

export type OpenRegionPurge = (region: RegionRecord) => RegionPurgeSession;

/** One call deletes a page of up to 500 items (a region's default); deleting blob bytes may take a moment. */
const STEP_DEADLINE_MS = 300_000;

/** Purges over the region's replica protocol, through `dialer` (which signs each call with the control plane's service token). */
export const purgeOverGrpc = (dialer: ReplicaDialer): OpenRegionPurge => (region) => {
  const client = dialer.dial(region);
  return {
    step: (request) =>
      new Promise((resolve, reject) => {
        client.Purge({ region: region.name, ...request }, { deadline: new Date(Date.now() + STEP_DEADLINE_MS) }, (err, reply) =>
          err || !reply ? reject(err) : resolve(toStep(reply)),
        );
      }),
    close: () => client.close(),
  };
};

const COUNT_NAMES = ['repositories', 'manifests', 'tags', 'blobLinks', 'blobs', 'bytes', 'discardedChanges'] as const;

function toStep(reply: PurgeReply__Output): PurgeStep {
  const counts = Object.fromEntries(COUNT_NAMES.map((name) => [name, Number(reply.counts?.[name] ?? 0)])) as unknown as PurgeCounts;
  return { counts, unrelayed: Number(reply.unrelayed), done: reply.done };
}

/** `total` plus `more`, count by count. */
export function addCounts(total: PurgeCounts, more: PurgeCounts): PurgeCounts {
  return Object.fromEntries(COUNT_NAMES.map((name) => [name, total[name] + more[name]])) as unknown as PurgeCounts;
}

/** Whether a failed call means the region could not be reached (rather than that it refused). */
export function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED;
}

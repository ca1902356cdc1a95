import { grpc } from '@meridian/proto';

/**
 * Which failures a replication job retries (with BullMQ's back-off) and which end it at once.
 * The gRPC statuses a region answers with are judged here and nowhere else (CONTRIBUTING.md,
 * 'Errors'); replica.proto says what each means.
 *
 * Retried: the region is away or busy (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
 * ABORTED, CANCELLED), it must be asked again later (FAILED_PRECONDITION: a child manifest is not
 * there yet), or it failed in a way a later try may not
 * (INTERNAL, UNKNOWN, NOT_FOUND).
 * Not retried: the request itself is wrong and would be wrong again (INVALID_ARGUMENT,
 * OUT_OF_RANGE, UNIMPLEMENTED, ALREADY_EXISTS), the worker may not ask (PERMISSION_DENIED,
 * UNAUTHENTICATED), or stored bytes no longer match their digest (DATA_LOSS). A source answering
 * DATA_LOSS is not the end of a copy: blob-copy.ts moves on to another region that holds the blob.
 */
const RETRYABLE_STATUS: Record<grpc.status, boolean> = {
  [grpc.status.OK]: false,
  [grpc.status.CANCELLED]: true,
  [grpc.status.UNKNOWN]: true,
  [grpc.status.INVALID_ARGUMENT]: false,
  [grpc.status.DEADLINE_EXCEEDED]: true,
  [grpc.status.NOT_FOUND]: true,
  [grpc.status.ALREADY_EXISTS]: false,
  [grpc.status.PERMISSION_DENIED]: false,
  [grpc.status.RESOURCE_EXHAUSTED]: true,
  [grpc.status.FAILED_PRECONDITION]: true,
  [grpc.status.ABORTED]: true,
  [grpc.status.OUT_OF_RANGE]: false,
  [grpc.status.UNIMPLEMENTED]: false,
  [grpc.status.INTERNAL]: true,
  [grpc.status.UNAVAILABLE]: true,
  [grpc.status.DATA_LOSS]: false,
  [grpc.status.UNAUTHENTICATED]: false,
};

/** The gRPC status of a failed call, or undefined for an error that is not one. */
export function grpcStatusOf(err: unknown): grpc.status | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'number' && 'details' in err) return err.code as grpc.status;
  return undefined;
}

export function hasStatus(err: unknown, status: grpc.status): boolean {
  return grpcStatusOf(err) === status;
}

/** A failure that carries its own verdict (the control plane's HTTP answers, the worker's own checks). */
export interface JudgedError extends Error {
  readonly retryable: boolean;
  /**
   * True when the failure says nothing about the work: the control plane, which the job reads
   * regions from and reports to, is away. The job then waits and runs again without spending an
   * attempt, so an outage of the control plane longer than the back-off does not turn every
   * replication in flight into a failure.
   */
  readonly outsideTheJob?: boolean;
}

/** What the worker found wrong with the work itself: a payload that is not a job, a manifest that does not parse. */
export class PermanentError extends Error implements JudgedError {
  readonly retryable = false;
}

/** Whether running the job again after `err` counts as another attempt. */
export function spendsAttempt(err: unknown): boolean {
  return !(err instanceof Error && 'outsideTheJob' in err && err.outsideTheJob === true);
}

/** Whether a job that failed with `err` should run again after a back-off. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof Error && 'retryable' in err && typeof err.retryable === 'boolean') return err.retryable;
  const status = grpcStatusOf(err);
  if (status !== undefined) return RETRYABLE_STATUS[status];
  // Anything else (a refused connection to the control plane, a reset socket) is the network.
  return true;
}

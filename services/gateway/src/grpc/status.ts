import { RegistryError, type ErrorKind } from '@meridian/oci';
import { ReplicaFencedError, ReplicaPreconditionError, ReplicaRequestError, ReplicaTransferIncompleteError } from '@meridian/registry';
import { grpc } from '@meridian/proto';

/**
 * The one place an error becomes a gRPC status, as the HTTP side has its one error table. The
 * replication worker retries by status (replica.proto, "Errors"): NOT_FOUND and
 * INVALID_ARGUMENT are final, FAILED_PRECONDITION and ABORTED mean "again later",
 * UNAVAILABLE and INTERNAL "again soon".
 */
const STATUS_BY_KIND: Partial<Record<ErrorKind, grpc.status>> = {
  BlobUnknown: grpc.status.NOT_FOUND,
  ManifestUnknown: grpc.status.NOT_FOUND,
  NameUnknown: grpc.status.NOT_FOUND,
  DigestInvalid: grpc.status.INVALID_ARGUMENT,
  ManifestInvalid: grpc.status.INVALID_ARGUMENT,
  ManifestTooLarge: grpc.status.INVALID_ARGUMENT,
  TagInvalid: grpc.status.INVALID_ARGUMENT,
  NameInvalid: grpc.status.INVALID_ARGUMENT,
  SizeInvalid: grpc.status.INVALID_ARGUMENT,
  ManifestBlobUnknown: grpc.status.FAILED_PRECONDITION,
  ManifestReferenced: grpc.status.FAILED_PRECONDITION,
  // Another request holds the transfer's session for a moment (a retry racing the original).
  BlobUploadInvalid: grpc.status.ABORTED,
  UploadRangeInvalid: grpc.status.ABORTED,
  StorageFailed: grpc.status.UNAVAILABLE,
  StorageFull: grpc.status.RESOURCE_EXHAUSTED,
};

export interface GrpcFailure {
  code: grpc.status;
  details: string;
  /** An error no status describes: a bug to log with its stack. */
  unexpected: boolean;
}

export function toGrpcStatus(err: unknown): GrpcFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ReplicaPreconditionError) return { code: grpc.status.FAILED_PRECONDITION, details: message, unexpected: false };
  if (err instanceof ReplicaTransferIncompleteError) return { code: grpc.status.ABORTED, details: message, unexpected: false };
  if (err instanceof ReplicaRequestError) return { code: grpc.status.INVALID_ARGUMENT, details: message, unexpected: false };
  // Retried: the worker's next attempt finds the region no longer taking replication, and drops the job.
  if (err instanceof ReplicaFencedError) return { code: grpc.status.UNAVAILABLE, details: message, unexpected: false };
  if (err instanceof RegistryError) {
    const code = STATUS_BY_KIND[err.kind];
    if (code !== undefined) return { code, details: message, unexpected: false };
  }
  // A database or disk that does not answer is worth a retry; anything else is a bug.
  const systemCode = (err as { code?: unknown })?.code;
  if (typeof systemCode === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|57P0[13]|08\d{3})$/.test(systemCode)) {
    return { code: grpc.status.UNAVAILABLE, details: message, unexpected: false };
  }
  return { code: grpc.status.INTERNAL, details: 'internal error', unexpected: true };
}

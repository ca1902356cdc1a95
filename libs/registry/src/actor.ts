import type { AuditAction, AuditEvent } from '@meridian/metadata';

/**
 * Who asks for a write, as the HTTP layer knows them: the identity its credentials signed in as
 * (none: anonymous) and where the request came from. A write records it in the audit log, in
 * the write's own transaction.
 */
export interface Actor {
  identity?: string | undefined;
  address?: string | undefined;
  forwardedFor?: string | undefined;
}

/** A write nobody is known to have asked for: a test, or a region with MERIDIAN_AUTH=off and no proxy. */
export const ANONYMOUS: Actor = {};

/** The audit entry of a write that succeeded. */
export function writeEvent(region: string, actor: Actor, action: AuditAction, target: string, detail?: AuditEvent['detail']): AuditEvent {
  return {
    region,
    identity: actor.identity,
    address: actor.address,
    forwardedFor: actor.forwardedFor,
    action,
    target,
    outcome: 'success',
    ...(detail ? { detail } : {}),
  };
}

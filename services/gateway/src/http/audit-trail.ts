import type { Request } from 'express';
import type { AuditEvent, AuditStore } from '@meridian/metadata';
import type { Actor } from '@meridian/registry';

/** An X-Forwarded-For longer than this is cut: it is the client's own text. */
const MAX_FORWARDED_FOR = 256;

/** Who sent a request, as far as the gateway can tell: its TCP peer, and what a proxy said before it. */
export function requestActor(req: Request, identity: string | undefined): Actor {
  const forwarded = req.headers['x-forwarded-for'];
  const forwardedFor = Array.isArray(forwarded) ? forwarded.join(', ') : forwarded;
  return {
    identity,
    address: req.socket.remoteAddress,
    ...(forwardedFor ? { forwardedFor: forwardedFor.slice(0, MAX_FORWARDED_FOR) } : {}),
  };
}

/** An event as the HTTP layer sees it: the region and the client's address are filled in. */
export type RequestEvent = Omit<AuditEvent, 'region' | 'address' | 'forwardedFor'>;

/**
 * Records sign-ins and identity changes in the region's audit log, with the request's address.
 * (Pushes and deletes are recorded by libs/registry, in the transaction of the write.) A failure
 * to record fails the request: an action the log cannot hold is not done silently.
 */
export class AuditTrail {
  constructor(
    private readonly region: string,
    private readonly store: AuditStore,
  ) {}

  record(req: Request, event: RequestEvent): Promise<void> {
    const { identity, ...actor } = requestActor(req, event.identity);
    return this.store.append([{ ...event, identity, ...actor, region: this.region }]);
  }
}

import type { Request } from 'express';
import type { AuditEvent, AuditStore } from '@meridian/metadata';
import type { Actor } from '@meridian/registry';
import { requestOrigin, type IdentityAdminAudit } from '@meridian/auth/http';

/** Who sent a request, as far as the gateway can tell: the client's address (clientAddress), and the X-Forwarded-For it came with. */
export function requestActor(req: Request, identity: string | undefined): Actor {
  return { identity, ...requestOrigin(req) };
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

  /** The identity admin API's hook (libs/auth): its changes and refused credentials, in this region's log. */
  readonly identityAdmin: IdentityAdminAudit = (event) => this.store.append([{ ...event, region: this.region }]);
}

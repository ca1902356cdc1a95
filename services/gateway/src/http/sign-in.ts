import type { Request } from 'express';
import { tooManySignIns, type IdentityService, type SignInOutcome, type SignInRefusal } from '@meridian/auth';
import { clientAddress } from '@meridian/auth/http';
import type { AuditTrail } from './audit-trail.js';

/** How the credentials came: the audit log's `via`. */
export type SignInVia = 'basic' | 'token' | 'password' | 'refresh_token' | 'admin-api';

/**
 * Signs `name` in with `password`, counted against the name and the client's address
 * (libs/auth SignInLimiter; clientAddress: X-Forwarded-For counts only as far as trusted proxies
 * wrote it, MERIDIAN_TRUSTED_PROXIES). An attempt past the limits is refused with 429 TOOMANYREQUESTS and Retry-After, its
 * password unchecked; the window's first refusal is audited as a failed sign-in. Every other
 * outcome is the caller's to audit, as it audits sign-ins.
 */
export async function signInLimited(req: Request, identities: IdentityService, audit: AuditTrail, name: string, password: string, via: SignInVia): Promise<Omit<SignInOutcome, 'refused'>> {
  const outcome = await identities.signIn(name, password, clientAddress(req));
  if (outcome.refused) await refuse(req, audit, outcome.refused, name, via);
  return outcome;
}

/** Refuses an attempt the limiter turned away: audited once a window, then 429. */
export async function refuse(req: Request, audit: AuditTrail, refusal: SignInRefusal, name: string | undefined, via: SignInVia): Promise<never> {
  if (refusal.first) await audit.record(req, { identity: name, action: 'sign-in', outcome: 'failure', detail: { via, limited: refusal.by } });
  throw tooManySignIns(refusal, name);
}

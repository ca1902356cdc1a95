import type { RequestHandler } from 'express';
import { UnauthorizedError } from '@meridian/oci';
import { ServiceTokenInvalidError, type IdentityService, type ServiceTokenVerifier } from '@meridian/auth';
import { ADMIN_CHALLENGE, parseAuthorization, signInAdministrator, type IdentityAdminAudit } from '@meridian/auth/http';

/** Who a request to the control plane comes from, once the guard has let it through. */
export type AdminCaller = { kind: 'user'; name: string } | { kind: 'service'; name: string };

/**
 * With MERIDIAN_AUTH=on, every request past the health endpoints and /metrics needs either a
 * user's Basic credentials (an administrator: the CLI, a browser on the dashboard) or a service
 * token signed with the cluster secret (a gateway, the replication worker, the router). The
 * caller is left in `res.locals.caller`. Tokens of the registry (scope-mapped clients) are no
 * credentials here. Failed Basic sign-ins count against the name and the client's address, and
 * past the limits (MERIDIAN_SIGN_IN_*) are refused with 429 and Retry-After, unchecked; Basic
 * credentials refused are audited as a failed (or denied) sign-in.
 */
export function createAdminGuard(deps: { identities: IdentityService; services: ServiceTokenVerifier; audit?: IdentityAdminAudit }): RequestHandler {
  return (req, res, next) => {
    void (async (): Promise<AdminCaller> => {
      const credentials = parseAuthorization(req.headers.authorization);
      if (credentials?.scheme === 'bearer') {
        const { service: name } = await deps.services.verify(credentials.token).catch((err: unknown) => {
          if (err instanceof ServiceTokenInvalidError) throw new UnauthorizedError('invalid or expired service token', ADMIN_CHALLENGE);
          throw err;
        });
        return { kind: 'service', name };
      }
      if (credentials?.scheme !== 'basic') throw new UnauthorizedError('administrator credentials required (Basic) or a service token', ADMIN_CHALLENGE);
      return { kind: 'user', name: await signInAdministrator(req, credentials, deps, 'only a user may use the control plane') };
    })().then((caller) => {
      res.locals.caller = caller;
      next();
    }, next);
  };
}

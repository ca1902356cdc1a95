import type { RequestHandler } from 'express';
import { DeniedError, UnauthorizedError } from '@meridian/oci';
import { ServiceTokenInvalidError, tooManySignIns, type IdentityService, type ServiceTokenVerifier } from '@meridian/auth';
import { parseAuthorization } from '@meridian/auth/http';

/** Sent with a 401: a browser opening the dashboard asks for the administrator's password. */
const ADMIN_CHALLENGE = 'Basic realm="meridian-admin", charset="UTF-8"';

/** Who a request to the control plane comes from, once the guard has let it through. */
export type AdminCaller = { kind: 'user'; name: string } | { kind: 'service'; name: string };

/**
 * With MERIDIAN_AUTH=on, every request past the health endpoints and /metrics needs either a
 * user's Basic credentials (an administrator: the CLI, a browser on the dashboard) or a service
 * token signed with the cluster secret (a gateway, the replication worker, the router). The
 * caller is left in `res.locals.caller`. Tokens of the registry (scope-mapped clients) are no
 * credentials here. Failed Basic sign-ins count against the name and the client's address, and
 * past the limits (MERIDIAN_SIGN_IN_*) are refused with 429 and Retry-After, unchecked.
 */
export function createAdminGuard(deps: { identities: IdentityService; services: ServiceTokenVerifier }): RequestHandler {
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
      const { identity, refused } = await deps.identities.signIn(credentials.name, credentials.password, req.socket.remoteAddress);
      if (refused) throw tooManySignIns(refused, credentials.name);
      if (!identity) throw new UnauthorizedError('invalid credentials', ADMIN_CHALLENGE);
      if (identity.kind !== 'user') throw new DeniedError('only a user may use the control plane');
      return { kind: 'user', name: identity.name };
    })().then((caller) => {
      res.locals.caller = caller;
      next();
    }, next);
  };
}

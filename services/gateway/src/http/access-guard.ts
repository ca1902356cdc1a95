import type { Request } from 'express';
import { DeniedError, UnauthorizedError, type RouteAction } from '@meridian/oci';
import {
  ANONYMOUS_SUBJECT,
  AccessTokenInvalidError,
  catalogFilter,
  grantAllows,
  requiredScope,
  type Permissions,
  type RepositoryAction,
} from '@meridian/auth';
import { parseAuthorization } from '@meridian/auth/http';
import type { RegionIdentities } from '../identity-setup.js';
import type { AuditTrail } from './audit-trail.js';
import { signInLimited } from './sign-in.js';

/** What a request may do beyond its route's own action; handlers ask it. */
export interface RequestAccess {
  /**
   * Whether a cross-repository mount may take a blob from `from` (distribution-spec v1.1
   * "Mounting a blob from another repository"): only with read access there. Without `from`
   * the source is any repository of the region, which only an administrator may read.
   */
  mayMountFrom(from: string | undefined): boolean;
  /** Which repositories `_catalog` shows; undefined: every one. */
  listsRepository?: (repository: string) => boolean;
  /** The identity the credentials signed in as (for the audit log); undefined: anonymous. */
  identity?: string;
}

/** With MERIDIAN_AUTH=off: everything is open. */
export const OPEN_ACCESS: RequestAccess = { mayMountFrom: () => true };

/** A pull without credentials, where MERIDIAN_ANONYMOUS_PULL=on: nothing beyond the pull itself. */
const ANONYMOUS_PULL_ACCESS: RequestAccess = { mayMountFrom: () => false };

export type AccessGuard = (req: Request, action: RouteAction, repository: string | undefined) => Promise<RequestAccess>;

/**
 * Checks a /v2 request's credentials against the action its route needs (libs/oci's route
 * table): a Bearer access token from the token endpoint (Docker token spec), or Basic credentials
 * straight on the request. No credentials, or none that hold: 401 UNAUTHORIZED with the challenge
 * that sends the client for a token. Credentials that hold but do not allow the action: 403
 * DENIED; for a token lacking a scope its identity does hold, 401 with
 * `error="insufficient_scope"`, so the client asks for a wider token and retries.
 *
 * With anonymous pull on, a pull needs no credentials, and an anonymous token (the token
 * endpoint's answer to a client without credentials) pulls; anything else without an identity
 * gets the 401 and its challenge, naming the scope, so the client knows to sign in.
 */
export function createAccessGuard(region: RegionIdentities, audit: AuditTrail): AccessGuard {
  return async (req, action, repository) => {
    const scope = requiredScope(action, repository);
    const challenge = (error?: string) =>
      [`Bearer realm="${realmOf(req, region)}"`, `service="${region.service}"`, ...(scope ? [`scope="${scope}"`] : []), ...(error ? [`error="${error}"`] : [])].join(',');
    const credentials = parseAuthorization(req.headers.authorization);
    if (!credentials) {
      if (region.anonymousPull && action === 'pull') return ANONYMOUS_PULL_ACCESS;
      throw new UnauthorizedError('authentication required', challenge());
    }

    if (credentials.scheme === 'basic') {
      // A Basic request is audited as a sign-in when its password was checked (every failure, and
      // a success once per remembered sign-in), not on each request of a client that sends
      // Basic credentials with every request: that would be a database write per pull.
      const { identity, remembered } = await signInLimited(req, region.identities, audit, credentials.name, credentials.password, 'basic');
      if (!remembered) await audit.record(req, { identity: credentials.name, action: 'sign-in', outcome: identity ? 'success' : 'failure', detail: { via: 'basic' } });
      if (!identity) throw new UnauthorizedError('invalid credentials', challenge());
      return { ...permissionsAccess(identity.permissions, action, repository), identity: identity.name };
    }

    const token = await region.verifier.verify(credentials.token).catch((err: unknown) => {
      if (err instanceof AccessTokenInvalidError) throw new UnauthorizedError('invalid or expired access token', challenge('invalid_token'));
      throw err;
    });
    const anonymous = token.subject === ANONYMOUS_SUBJECT;
    if (anonymous) {
      // Anonymous pull may have been switched off since the token was issued.
      if (!region.anonymousPull) throw new UnauthorizedError('authentication required', challenge('invalid_token'));
      if (action !== 'pull' && action !== 'none') throw new UnauthorizedError('authentication required', challenge());
      // An anonymous token for other repositories: the token endpoint gives one for this one.
      if (action === 'pull' && !grantAllows(token, repository!, action)) throw new UnauthorizedError('the access token does not grant this', challenge('insufficient_scope'));
    }
    if (isRepositoryAction(action) && !grantAllows(token, repository!, action)) {
      // The token lacks the scope: a client that could have it should fetch a new token.
      const current = await region.identities.currentPermissions(token.subject);
      if (current?.repositoryActions(repository!).has(action)) throw new UnauthorizedError('the access token does not grant this', challenge('insufficient_scope'));
      throw new DeniedError(`${action} on ${repository} is not allowed`);
    }
    if (action === 'catalog' && !token.access.some((entry) => entry.type === 'registry' && entry.name === 'catalog')) {
      const current = await region.identities.currentPermissions(token.subject);
      if (current && current.catalogPatterns().length > 0) throw new UnauthorizedError('the access token does not grant this', challenge('insufficient_scope'));
      throw new DeniedError('listing repositories is not allowed');
    }
    return {
      mayMountFrom: (from) => from !== undefined && grantAllows(token, from, 'pull'),
      listsRepository: catalogFilter(token),
      ...(anonymous ? {} : { identity: token.subject }),
    };
  };
}

function permissionsAccess(permissions: Permissions, action: RouteAction, repository: string | undefined): RequestAccess {
  if (isRepositoryAction(action) && !permissions.repositoryActions(repository!).has(action)) {
    throw new DeniedError(`${action} on ${repository} is not allowed`);
  }
  if (action === 'catalog' && permissions.catalogPatterns().length === 0) throw new DeniedError('listing repositories is not allowed');
  if (permissions.isAdministrator) return OPEN_ACCESS;
  return {
    mayMountFrom: (from) => from !== undefined && permissions.repositoryActions(from).has('pull'),
    listsRepository: catalogFilter({ catalog: permissions.catalogPatterns() }),
  };
}

function isRepositoryAction(action: RouteAction): action is RepositoryAction {
  return action === 'pull' || action === 'push' || action === 'delete';
}

/** A Host header fit to go inside the quoted realm; anything else is not echoed back. */
const PLAIN_HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/** The token endpoint clients are sent to: MERIDIAN_AUTH_REALM, or this gateway's, as the client reached it. */
function realmOf(req: Request, region: RegionIdentities): string {
  if (region.realm) return region.realm;
  const host = req.headers.host && PLAIN_HOST.test(req.headers.host) ? req.headers.host : `${req.socket.localAddress}:${req.socket.localPort}`;
  return `${req.protocol}://${host}/oauth2/token`;
}

import type { Request } from 'express';
import { DeniedError, UnauthorizedError, type RouteAction } from '@meridian/oci';
import {
  ANONYMOUS_SUBJECT,
  AccessTokenInvalidError,
  catalogFilter,
  grantAllows,
  requiredScope,
  type BlobUrlSigner,
  type Identity,
  type Permissions,
  type RepositoryAction,
  type VerifiedToken,
} from '@meridian/auth';
import { parseAuthorization } from '@meridian/auth/http';
import type { RegionIdentities } from '../identity-setup.js';
import type { AuditTrail } from './audit-trail.js';
import { blobUrlSignature } from './blob-redirects.js';
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

/** A blob read at a signed URL: that blob, and nothing else. */
const SIGNED_URL_ACCESS: RequestAccess = { mayMountFrom: () => false };

/** `blobDigest`: the digest in the path, on the blob route only. */
export type AccessGuard = (req: Request, action: RouteAction, repository: string | undefined, blobDigest?: string) => Promise<RequestAccess>;

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
 *
 * A blob GET or HEAD whose URL carries a signature (the redirect a blob GET through the router
 * gets, blob-redirects.ts) is let in by that alone when it holds for exactly this repository and
 * digest and has not expired; one that does not hold gets the same 401 as no credentials.
 */
export function createAccessGuard(region: RegionIdentities, audit: AuditTrail, blobUrls: BlobUrlSigner): AccessGuard {
  // What a signed-in identity or a verified token may do beyond a route's action is the same for
  // each of its requests: it is made once per remembered sign-in or verified token (both objects
  // are kept by their caches, and go with them).
  const accessOf = new WeakMap<Identity | VerifiedToken, RequestAccess>();
  const accessFor = <K extends Identity | VerifiedToken>(key: K, make: (key: K) => RequestAccess) => {
    let access = accessOf.get(key);
    if (!access) accessOf.set(key, (access = make(key)));
    return access;
  };
  // The challenge is built only for a refusal: most requests are let in, and pay for nothing of it.
  const refusal = (req: Request, action: RouteAction, repository: string | undefined, message: string, error?: string) => {
    const scope = requiredScope(action, repository);
    const challenge = [`Bearer realm="${realmOf(req, region)}"`, `service="${region.service}"`, ...(scope ? [`scope="${scope}"`] : []), ...(error ? [`error="${error}"`] : [])].join(',');
    return new UnauthorizedError(message, challenge);
  };
  return async (req, action, repository, blobDigest) => {
    if (blobDigest !== undefined && action === 'pull') {
      const signed = blobUrlSignature(req);
      if (signed) {
        if (blobUrls.verifies(repository!, blobDigest, signed.expires, signed.signature)) return SIGNED_URL_ACCESS;
        throw refusal(req, action, repository, 'authentication required');
      }
    }
    const credentials = parseAuthorization(req.headers.authorization);
    if (!credentials) {
      if (region.anonymousPull && action === 'pull') return ANONYMOUS_PULL_ACCESS;
      throw refusal(req, action, repository, 'authentication required');
    }

    if (credentials.scheme === 'basic') {
      // A Basic request is audited as a sign-in when its password was checked (every failure, and
      // a success once per remembered sign-in), not on each request of a client that sends
      // Basic credentials with every request: that would be a database write per pull.
      const { identity, remembered } = await signInLimited(req, region.identities, audit, credentials.name, credentials.password, 'basic');
      if (!remembered) await audit.record(req, { identity: credentials.name, action: 'sign-in', outcome: identity ? 'success' : 'failure', detail: { via: 'basic' } });
      if (!identity) throw refusal(req, action, repository, 'invalid credentials');
      assertPermitted(identity.permissions, action, repository);
      return accessFor(identity, identityAccess);
    }

    let token: VerifiedToken;
    try {
      token = await region.verifier.verify(credentials.token);
    } catch (err) {
      if (err instanceof AccessTokenInvalidError) throw refusal(req, action, repository, 'invalid or expired access token', 'invalid_token');
      throw err;
    }
    const anonymous = token.subject === ANONYMOUS_SUBJECT;
    if (anonymous) {
      // Anonymous pull may have been switched off since the token was issued.
      if (!region.anonymousPull) throw refusal(req, action, repository, 'authentication required', 'invalid_token');
      if (action !== 'pull' && action !== 'none') throw refusal(req, action, repository, 'authentication required');
      // An anonymous token for other repositories: the token endpoint gives one for this one.
      if (action === 'pull' && !grantAllows(token, repository!, action)) throw refusal(req, action, repository, 'the access token does not grant this', 'insufficient_scope');
    }
    if (isRepositoryAction(action) && !grantAllows(token, repository!, action)) {
      // The token lacks the scope: a client that could have it should fetch a new token.
      const current = await region.identities.currentPermissions(token.subject);
      if (current?.repositoryActions(repository!).has(action)) throw refusal(req, action, repository, 'the access token does not grant this', 'insufficient_scope');
      throw new DeniedError(`${action} on ${repository} is not allowed`);
    }
    if (action === 'catalog' && !token.access.some((entry) => entry.type === 'registry' && entry.name === 'catalog')) {
      const current = await region.identities.currentPermissions(token.subject);
      if (current && current.catalogPatterns().length > 0) throw refusal(req, action, repository, 'the access token does not grant this', 'insufficient_scope');
      throw new DeniedError('listing repositories is not allowed');
    }
    return accessFor(token, tokenAccess);
  };
}

function tokenAccess(token: VerifiedToken): RequestAccess {
  return {
    mayMountFrom: (from) => from !== undefined && grantAllows(token, from, 'pull'),
    listsRepository: catalogFilter(token),
    ...(token.subject === ANONYMOUS_SUBJECT ? {} : { identity: token.subject }),
  };
}

function assertPermitted(permissions: Permissions, action: RouteAction, repository: string | undefined): void {
  if (isRepositoryAction(action) && !permissions.repositoryActions(repository!).has(action)) {
    throw new DeniedError(`${action} on ${repository} is not allowed`);
  }
  if (action === 'catalog' && permissions.catalogPatterns().length === 0) throw new DeniedError('listing repositories is not allowed');
}

function identityAccess({ name, permissions }: Identity): RequestAccess {
  if (permissions.isAdministrator) return { ...OPEN_ACCESS, identity: name };
  return {
    mayMountFrom: (from) => from !== undefined && permissions.repositoryActions(from).has('pull'),
    listsRepository: catalogFilter({ catalog: permissions.catalogPatterns() }),
    identity: name,
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

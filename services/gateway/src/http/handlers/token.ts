import express, { type RequestHandler, type Response } from 'express';
import { IdentityInvalidError, UnauthorizedError } from '@meridian/oci';
import { ANONYMOUS_PERMISSIONS, ANONYMOUS_SUBJECT, AccessTokenInvalidError, grantRequested, parseScope, type AccessEntry, type IssuedToken, type Permissions } from '@meridian/auth';
import type { RegionIdentities } from '../../identity-setup.js';
import { clientAddress, parseAuthorization } from '@meridian/auth/http';
import type { AuditTrail } from '../audit-trail.js';
import { refuse, signInLimited } from '../sign-in.js';

/** Where clients fetch tokens: the realm of the gateway's challenges. */
export const TOKEN_PATH = '/oauth2/token';

/** Sent to a token request without credentials: the token endpoint takes the password itself (RFC 7617). */
const BASIC_CHALLENGE = 'Basic realm="meridian", charset="UTF-8"';

/**
 * The token endpoint of the Docker token spec ("Token Authentication Specification", and its
 * "OAuth2 Token Authentication" for POST), as docker, podman, skopeo and containerd speak it:
 *
 * - GET with Basic credentials and `service`, `scope` (repeated) in the query; where anonymous
 *   pull is on, GET without credentials too, for a token granting only the pulls asked for;
 * - POST (form) with `grant_type=password` and `username`, `password`, or
 *   `grant_type=refresh_token` and the `refresh_token` an earlier POST returned.
 *
 * The answer is `{token, access_token, expires_in, issued_at}` (and `refresh_token` from a
 * POST): the same token under both names, as Docker's and containerd's clients each read one.
 * What is granted is what was asked for, narrowed to what the identity may do. Every sign-in,
 * refused or not, is audited (the name given, never the password or a token). Past the limits of
 * failed sign-ins the answer is 429 with `Retry-After` and the TOOMANYREQUESTS error body, the
 * registry's own (skopeo reports "too many requests to registry").
 */
export function createTokenHandler(region: RegionIdentities, audit: AuditTrail): RequestHandler {
  const router = express.Router();
  router.get(TOKEN_PATH, (req, res, next) => {
    void (async () => {
      checkService(req.query.service, region.service);
      const credentials = parseAuthorization(req.headers.authorization);
      if (!credentials && region.anonymousPull) {
        // Clients ask without credentials first when they have none (docker, containerd, skopeo):
        // where anonymous pull is on, the pull part of what they ask for is granted to no one in
        // particular. Not a sign-in, so not audited.
        const grant = grantRequested(ANONYMOUS_PERMISSIONS, scopesOf(req.query.scope));
        if (grant.access.length > 0) {
          sendToken(res, await region.issuer.issue(ANONYMOUS_SUBJECT, grant));
          return;
        }
      }
      if (credentials?.scheme !== 'basic') throw new UnauthorizedError('credentials required: Basic, with a user or token name and its password', BASIC_CHALLENGE);
      const { identity } = await signInLimited(req, region.identities, audit, credentials.name, credentials.password, 'token');
      await audit.record(req, { identity: credentials.name, action: 'sign-in', outcome: identity ? 'success' : 'failure', detail: { via: 'token' } });
      if (!identity) throw new UnauthorizedError('invalid credentials', BASIC_CHALLENGE);
      const issued = await issue(region, identity.name, identity.permissions, scopesOf(req.query.scope));
      sendToken(res, issued);
    })().catch(next);
  });
  router.post(TOKEN_PATH, express.urlencoded({ extended: false, limit: '16kb' }), (req, res, next) => {
    void (async () => {
      const form = (req.body ?? {}) as Record<string, unknown>;
      checkService(form.service, region.service);
      const scopes = scopesOf(typeof form.scope === 'string' ? form.scope.split(' ') : undefined);
      if (form.grant_type === 'password') {
        if (typeof form.username !== 'string' || typeof form.password !== 'string') throw new IdentityInvalidError('grant_type=password needs username and password');
        const { identity } = await signInLimited(req, region.identities, audit, form.username, form.password, 'password');
        await audit.record(req, { identity: form.username, action: 'sign-in', outcome: identity ? 'success' : 'failure', detail: { via: 'password' } });
        if (!identity) throw new UnauthorizedError('invalid credentials', BASIC_CHALLENGE);
        const refresh = await region.refreshIssuer.issue(identity.name, { access: [], catalog: [] });
        sendToken(res, await issue(region, identity.name, identity.permissions, scopes), refresh.token);
      } else if (form.grant_type === 'refresh_token') {
        if (typeof form.refresh_token !== 'string') throw new IdentityInvalidError('grant_type=refresh_token needs refresh_token');
        // A refresh token names no one until it verifies: its attempts count against the address alone.
        const refused = await region.identities.beginUnnamedAttempt(clientAddress(req));
        if (refused) await refuse(req, audit, refused, undefined, 'refresh_token');
        const subject = await region.refreshVerifier.verify(form.refresh_token).then(
          async (verified) => {
            await region.identities.unnamedAttemptSucceeded(clientAddress(req));
            return verified.subject;
          },
          async (err: unknown) => {
            if (!(err instanceof AccessTokenInvalidError)) throw err;
            await audit.record(req, { action: 'sign-in', outcome: 'failure', detail: { via: 'refresh_token' } });
            throw new UnauthorizedError('invalid or expired refresh token', BASIC_CHALLENGE);
          },
        );
        // A token disabled, expired or deleted since cannot refresh.
        const permissions = await region.identities.currentPermissions(subject);
        await audit.record(req, { identity: subject, action: 'sign-in', outcome: permissions ? 'success' : 'failure', detail: { via: 'refresh_token' } });
        if (!permissions) throw new UnauthorizedError('the identity of the refresh token can no longer sign in', BASIC_CHALLENGE);
        sendToken(res, await issue(region, subject, permissions, scopes), form.refresh_token);
      } else {
        throw new IdentityInvalidError('grant_type must be password or refresh_token');
      }
    })().catch(next);
  });
  return router;
}

function issue(region: RegionIdentities, subject: string, permissions: Permissions, scopes: AccessEntry[]): Promise<IssuedToken> {
  return region.issuer.issue(subject, grantRequested(permissions, scopes));
}

/** `scope` given once, several times, or (OAuth2) space-separated; malformed ones are left out, as nothing can be granted for them. */
function scopesOf(value: unknown): AccessEntry[] {
  const values = (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
  return values.flatMap((v) => v.split(' ')).flatMap((scope) => parseScope(scope) ?? []);
}

function checkService(value: unknown, service: string): void {
  if (value !== undefined && value !== service) throw new IdentityInvalidError(`this token endpoint issues tokens for the service "${service}"`);
}

function sendToken(res: Response, issued: IssuedToken, refreshToken?: string): void {
  // Tokens must not be kept by caches on the way (RFC 6749 §5.1).
  res.setHeader('Cache-Control', 'no-store');
  res.status(200).json({
    token: issued.token,
    access_token: issued.token,
    expires_in: issued.expiresInSeconds,
    issued_at: issued.issuedAt.toISOString(),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  });
}


import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import { DeniedError, IdentityInvalidError, UnauthorizedError } from '@meridian/oci';
import type { RegionIdentities } from '../../identity-setup.js';
import { parseAuthorization } from '@meridian/auth/http';
import type { AuditTrail, RequestEvent } from '../audit-trail.js';
import { signInLimited } from '../sign-in.js';

/** Where the identity admin API is served. */
export const IDENTITY_API_PATH = '/api/v1';

const ADMIN_CHALLENGE = 'Basic realm="meridian-admin", charset="UTF-8"';

/**
 * The identity admin API, for `meridian user|scope-map|token`: JSON in and out, Basic
 * credentials of a user (an administrator) on every request. A password made here is in the
 * answer that made it, once, and never again; answers carrying one are `no-store`.
 *
 *   GET|POST   /api/v1/users                      DELETE /api/v1/users/NAME
 *   GET|POST   /api/v1/scope-maps                 DELETE /api/v1/scope-maps/NAME
 *   GET|POST   /api/v1/tokens                     DELETE /api/v1/tokens/NAME
 *   POST /api/v1/tokens/NAME/disable | /enable | /passwords/1|2 (rotate that password)
 *
 * Every change is audited as the administrator's; so are credentials refused here.
 */
export function createIdentityAdminRouter(region: RegionIdentities, audit: AuditTrail): RequestHandler {
  const { identities } = region;
  const router = express.Router();
  router.use(IDENTITY_API_PATH, administratorOnly(region, audit));
  router.use(IDENTITY_API_PATH, express.json({ limit: '64kb' }), ((err, _req, _res, next) => {
    // body-parser's own errors (malformed JSON, too large) are the client's, not UNKNOWN.
    next((err as { type?: string }).type ? new IdentityInvalidError(`request body: ${(err as Error).message}`) : err);
  }) as ErrorRequestHandler);

  const route = (handler: (req: Request, res: Response) => Promise<void>): RequestHandler => (req, res, next) => void handler(req, res).catch(next);
  /** Audits a change the administrator made, once it is done. */
  const audited = (req: Request, res: Response, action: RequestEvent['action'], target: string, detail?: RequestEvent['detail']) =>
    audit.record(req, { identity: administratorOf(res), action, target, outcome: 'success', ...(detail ? { detail } : {}) });

  router.get(`${IDENTITY_API_PATH}/users`, route(async (_req, res) => void res.json({ users: await identities.listUsers() })));
  router.post(`${IDENTITY_API_PATH}/users`, route(async (req, res) => {
    const body = bodyOf(req);
    const created = await identities.createUser(text(body.name, 'name'), optionalText(body.password, 'password'));
    await audited(req, res, 'user.create', `user ${created.name}`);
    secret(res).status(201).json(body.password === undefined ? created : { name: created.name });
  }));
  router.delete(`${IDENTITY_API_PATH}/users/:name`, route(async (req, res) => {
    await identities.deleteUser(nameParam(req));
    await audited(req, res, 'user.delete', `user ${nameParam(req)}`);
    res.status(204).end();
  }));

  router.get(`${IDENTITY_API_PATH}/scope-maps`, route(async (_req, res) => void res.json({ scopeMaps: await identities.listScopeMaps() })));
  router.post(`${IDENTITY_API_PATH}/scope-maps`, route(async (req, res) => {
    const body = bodyOf(req);
    const created = await identities.createScopeMap(text(body.name, 'name'), texts(body.repositories, 'repositories'), texts(body.actions, 'actions'));
    await audited(req, res, 'scope-map.create', `scope-map ${created.name}`, { repositories: created.repositories.join(' '), actions: created.actions.join(' ') });
    res.status(201).json(created);
  }));
  router.delete(`${IDENTITY_API_PATH}/scope-maps/:name`, route(async (req, res) => {
    await identities.deleteScopeMap(nameParam(req));
    await audited(req, res, 'scope-map.delete', `scope-map ${nameParam(req)}`);
    res.status(204).end();
  }));

  router.get(`${IDENTITY_API_PATH}/tokens`, route(async (_req, res) => void res.json({ tokens: await identities.listTokens() })));
  router.post(`${IDENTITY_API_PATH}/tokens`, route(async (req, res) => {
    const body = bodyOf(req);
    const expiresAt = optionalText(body.expiresAt, 'expiresAt');
    const expiry = expiresAt === undefined ? null : new Date(expiresAt);
    if (expiry && Number.isNaN(expiry.getTime())) throw new IdentityInvalidError('expiresAt: expected a date (2027-01-31 or an ISO 8601 time)');
    const created = await identities.createToken(text(body.name, 'name'), text(body.scopeMap, 'scopeMap'), expiry);
    await audited(req, res, 'token.create', `token ${created.name}`, { scopeMap: created.scopeMap, ...(created.expiresAt ? { expiresAt: created.expiresAt.toISOString() } : {}) });
    secret(res).status(201).json(created);
  }));
  router.post(`${IDENTITY_API_PATH}/tokens/:name/disable`, route(async (req, res) => {
    await identities.setTokenDisabled(nameParam(req), true);
    await audited(req, res, 'token.disable', `token ${nameParam(req)}`);
    res.status(204).end();
  }));
  router.post(`${IDENTITY_API_PATH}/tokens/:name/enable`, route(async (req, res) => {
    await identities.setTokenDisabled(nameParam(req), false);
    await audited(req, res, 'token.enable', `token ${nameParam(req)}`);
    res.status(204).end();
  }));
  router.post(`${IDENTITY_API_PATH}/tokens/:name/passwords/:slot`, route(async (req, res) => {
    const slot = req.params.slot === '1' ? 1 : req.params.slot === '2' ? 2 : undefined;
    if (!slot) throw new IdentityInvalidError('a token has passwords 1 and 2');
    const rotated = await identities.rotateTokenPassword(nameParam(req), slot);
    await audited(req, res, 'token.rotate', `token ${rotated.name}`, { slot });
    secret(res).status(200).json(rotated);
  }));
  router.delete(`${IDENTITY_API_PATH}/tokens/:name`, route(async (req, res) => {
    await identities.deleteToken(nameParam(req));
    await audited(req, res, 'token.delete', `token ${nameParam(req)}`);
    res.status(204).end();
  }));
  return router;
}

/**
 * Lets through only a user's Basic credentials (users are administrators), and remembers which
 * user for the audit log. Credentials refused are audited: a failed sign-in, or a token denied.
 */
export function administratorOnly(region: RegionIdentities, audit: AuditTrail): RequestHandler {
  return (req, res, next) => {
    void (async () => {
      const credentials = parseAuthorization(req.headers.authorization);
      if (credentials?.scheme !== 'basic') throw new UnauthorizedError('administrator credentials required (Basic)', ADMIN_CHALLENGE);
      const { identity } = await signInLimited(req, region.identities, audit, credentials.name, credentials.password, 'admin-api');
      if (!identity || identity.kind !== 'user') {
        await audit.record(req, { identity: credentials.name, action: 'sign-in', outcome: identity ? 'denied' : 'failure', detail: { via: 'admin-api' } });
      }
      if (!identity) throw new UnauthorizedError('invalid credentials', ADMIN_CHALLENGE);
      if (identity.kind !== 'user') throw new DeniedError('only a user may manage identities');
      res.locals.administrator = identity.name;
    })().then(() => next(), next);
  };
}

function administratorOf(res: Response): string {
  return res.locals.administrator as string;
}

function secret(res: Response): Response {
  return res.setHeader('Cache-Control', 'no-store');
}

function bodyOf(req: Request): Record<string, unknown> {
  if (typeof req.body !== 'object' || req.body === null) throw new IdentityInvalidError('expected a JSON object body (Content-Type: application/json)');
  return req.body as Record<string, unknown>;
}

function text(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new IdentityInvalidError(`${field}: expected a string`);
  return value;
}

function optionalText(value: unknown, field: string): string | undefined {
  return value === undefined || value === null ? undefined : text(value, field);
}

function texts(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw new IdentityInvalidError(`${field}: expected a list of strings`);
  return value as string[];
}

function nameParam(req: Request): string {
  return String(req.params.name);
}

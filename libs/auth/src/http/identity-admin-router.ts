import { isIP } from 'node:net';
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import { DeniedError, IdentityInvalidError, UnauthorizedError } from '@meridian/oci';
import type { IdentityService } from '../identity-service.js';
import { tooManySignIns } from '../sign-in-limits.js';
import { parseAuthorization, type Credentials } from './authorization.js';

type BasicCredentials = Extract<Credentials, { scheme: 'basic' }>;

/** Where the identity admin API is served. */
export const IDENTITY_API_PATH = '/api/v1';

/** The identity admin API's paths, and nothing else under /api/v1. */
export const IDENTITY_API_PATHS = ['users', 'scope-maps', 'tokens'].map((collection) => `${IDENTITY_API_PATH}/${collection}`);

/** Sent with a 401: a browser opening an admin page (the control plane's dashboard) asks for the administrator's password. */
export const ADMIN_CHALLENGE = 'Basic realm="meridian-admin", charset="UTF-8"';

/** An X-Forwarded-For longer than this is cut: it is the client's own text. */
const MAX_FORWARDED_FOR = 256;

/** Where a request came from, as far as a server can tell: the client's address, and the X-Forwarded-For it came with. */
export interface RequestOrigin {
  /** clientAddress(req). */
  address: string | undefined;
  /** The X-Forwarded-For the request carried, whole and as claimed: only its trusted hops vouch for any of it. */
  forwardedFor?: string;
}

export function requestOrigin(req: Request): RequestOrigin {
  const forwarded = req.headers['x-forwarded-for'];
  const forwardedFor = Array.isArray(forwarded) ? forwarded.join(', ') : forwarded;
  return { address: clientAddress(req), ...(forwardedFor ? { forwardedFor: forwardedFor.slice(0, MAX_FORWARDED_FOR) } : {}) };
}

/**
 * The address a request's client is known by, for sign-in limits and the audit log: its TCP peer;
 * or, when the peer is a proxy the app trusts (express's `trust proxy`, which each service sets
 * from MERIDIAN_TRUSTED_PROXIES), the nearest X-Forwarded-For entry no trusted proxy owns
 * (express's `req.ip`, by proxy-addr). Entries left of that one are the client's own claim and
 * change nothing. An entry a trusted proxy wrote that is no address counts as the peer's own, so
 * a limiter key or an audit row is always an address.
 */
export function clientAddress(req: Request): string | undefined {
  const address = req.ip;
  return address !== undefined && isIP(address) !== 0 ? address : req.socket.remoteAddress;
}

/**
 * What the identity admin API tells the audit log: an identity change, as the administrator's
 * who made it, or credentials it refused (`sign-in`, with the name given). Names and facts only,
 * never a password.
 */
export interface IdentityAdminEvent {
  identity: string;
  action: 'sign-in' | 'user.create' | 'user.delete' | 'scope-map.create' | 'scope-map.delete' | 'token.create' | 'token.delete' | 'token.disable' | 'token.enable' | 'token.rotate';
  /** `user NAME`, `scope-map NAME`, `token NAME`. */
  target?: string;
  outcome: 'success' | 'failure' | 'denied';
  detail?: Record<string, string | number | boolean>;
}

/**
 * Records an event and where its request came from (`origin`). A change is recorded once done,
 * before it is answered; a rejection fails the request, so a change the log cannot hold is not
 * answered as done.
 */
export type IdentityAdminAudit = (event: IdentityAdminEvent & RequestOrigin) => Promise<void>;

export interface IdentityAdminDeps {
  identities: IdentityService;
  /** Where changes and refused credentials are recorded; absent, nothing is. */
  audit?: IdentityAdminAudit;
}

/**
 * The identity admin API, for `meridian user|scope-map|token`, served by a lone region's gateway
 * and by a cluster's control plane alike: JSON in and out, Basic credentials of a user (an
 * administrator) on every request. Errors are thrown as libs/oci's identity errors; each
 * service's one error middleware writes them. A password made here is in the
 * answer that made it, once, and never again; answers carrying one are `no-store`.
 * Every change is audited as the administrator's; so are credentials refused here.
 *
 *   GET|POST   /api/v1/users                      DELETE /api/v1/users/NAME
 *   GET|POST   /api/v1/scope-maps                 DELETE /api/v1/scope-maps/NAME
 *   GET|POST   /api/v1/tokens                     DELETE /api/v1/tokens/NAME
 *   POST /api/v1/tokens/NAME/disable | /enable | /passwords/1|2 (rotate that password)
 */
export function createIdentityAdminRouter(deps: IdentityAdminDeps): RequestHandler {
  const { identities } = deps;
  const router = express.Router();
  // Only its own paths: the control plane serves more of its admin API under /api/v1.
  const paths = IDENTITY_API_PATHS;
  router.use(paths, administratorOnly(deps));
  router.use(paths, express.json({ limit: '64kb' }), ((err, _req, _res, next) => {
    // body-parser's own errors (malformed JSON, too large) are the client's, not UNKNOWN.
    next((err as { type?: string }).type ? new IdentityInvalidError(`request body: ${(err as Error).message}`) : err);
  }) as ErrorRequestHandler);

  const route = (handler: (req: Request, res: Response) => Promise<void>): RequestHandler => (req, res, next) => void handler(req, res).catch(next);
  /** Audits a change the administrator made, once it is done. */
  const audited = async (req: Request, res: Response, action: IdentityAdminEvent['action'], target: string, detail?: IdentityAdminEvent['detail']) => {
    await deps.audit?.({ identity: administratorOf(res), action, target, outcome: 'success', ...(detail ? { detail } : {}), ...requestOrigin(req) });
  };

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
 * user in `res.locals.administrator` for the audit log. Also the gate of a lone gateway's audit log.
 */
export function administratorOnly(deps: IdentityAdminDeps): RequestHandler {
  return (req, res, next) => {
    void (async () => {
      const credentials = parseAuthorization(req.headers.authorization);
      if (credentials?.scheme !== 'basic') throw new UnauthorizedError('administrator credentials required (Basic)', ADMIN_CHALLENGE);
      res.locals.administrator = await signInAdministrator(req, credentials, deps, 'only a user may manage identities');
    })().then(() => next(), next);
  };
}

/**
 * The administrator whose Basic credentials `req` carries: a user (users are administrators).
 * Credentials refused are audited, a failed sign-in or a token denied, then thrown:
 * UnauthorizedError (with the admin challenge) for wrong ones, DeniedError (`denied`) for an
 * identity that is no user, TooManyRequestsError past the limits of failed sign-ins (the
 * IdentityService's limiter), the password then unchecked.
 */
export async function signInAdministrator(req: Request, credentials: BasicCredentials, deps: IdentityAdminDeps, denied: string): Promise<string> {
  const origin = requestOrigin(req);
  const { identity, refused } = await deps.identities.signIn(credentials.name, credentials.password, origin.address);
  if (refused) {
    // Audited once a window, not once per request of a client that keeps trying.
    if (refused.first) await deps.audit?.({ identity: credentials.name, action: 'sign-in', outcome: 'failure', detail: { via: 'admin-api', limited: refused.by }, ...origin });
    throw tooManySignIns(refused, credentials.name);
  }
  if (!identity || identity.kind !== 'user') {
    await deps.audit?.({ identity: credentials.name, action: 'sign-in', outcome: identity ? 'denied' : 'failure', detail: { via: 'admin-api' }, ...origin });
  }
  if (!identity) throw new UnauthorizedError('invalid credentials', ADMIN_CHALLENGE);
  if (identity.kind !== 'user') throw new DeniedError(denied);
  return identity.name;
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

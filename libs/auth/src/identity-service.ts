/**
 * Users, scope maps and tokens: who may sign in, with what permissions. It stores through
 * `IdentityRecords` (libs/metadata's IdentityStore in a gateway) and never sees SQL or HTTP.
 * Passwords are made here, returned once to whoever created them, and stored only as argon2id
 * hashes; nothing here logs.
 */
import { IdentityConflictError, IdentityInvalidError, IdentityUnknownError } from '@meridian/oci';
import { Permissions, assertRepositoryPattern, isScopeMapAction, type ScopeMap, type ScopeMapAction } from './permissions.js';
import { generatePassword, hashPassword, verifyPassword } from './passwords.js';
import { VerifiedSignIns, type CheckedSignIn, type FailedCheck, type SignInAnswer } from './verified-sign-ins.js';
import type { SignInLimiter, SignInRefusal } from './sign-in-limits.js';

export interface TokenRecord {
  name: string;
  scopeMap: { name: string; repositories: string[]; actions: string[] };
  password1Hash: string | null;
  password2Hash: string | null;
  expiresAt: Date | null;
  disabled: boolean;
}

/** What the service needs of a store; each write answers whether it found its row. */
export interface IdentityRecords {
  findUser(name: string): Promise<{ name: string; passwordHash: string } | undefined>;
  insertUser(user: { name: string; passwordHash: string }): Promise<boolean>;
  setUserPassword(name: string, passwordHash: string): Promise<boolean>;
  deleteUser(name: string): Promise<boolean>;
  listUsers(): Promise<string[]>;
  insertScopeMap(map: { name: string; repositories: string[]; actions: string[] }): Promise<boolean>;
  findScopeMap(name: string): Promise<{ name: string; repositories: string[]; actions: string[] } | undefined>;
  listScopeMaps(): Promise<Array<{ name: string; repositories: string[]; actions: string[] }>>;
  deleteScopeMap(name: string): Promise<'deleted' | 'unknown' | 'in-use'>;
  insertToken(token: { name: string; scopeMap: string; password1Hash: string; expiresAt: Date | null }): Promise<'created' | 'exists' | 'no-scope-map'>;
  findToken(name: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<Array<{ name: string; scopeMap: string; expiresAt: Date | null; disabled: boolean }>>;
  setTokenDisabled(name: string, disabled: boolean): Promise<boolean>;
  setTokenPassword(name: string, slot: 1 | 2, passwordHash: string): Promise<boolean>;
  deleteToken(name: string): Promise<boolean>;
}

export interface Identity {
  name: string;
  kind: 'user' | 'token';
  permissions: Permissions;
}

/** Users, scope maps and tokens share the repository component grammar, so a name is safe in a URL path and a log. */
const IDENTITY_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const MAX_NAME_LENGTH = 64;

export interface IdentityServiceOptions {
  now?: () => Date;
  /**
   * How long a successful sign-in is taken again without checking its password against the
   * argon2id hash (see VerifiedSignIns); 0 checks every time. Keep it within the access-token
   * lifetime: a change made through another process is seen here only once it has passed.
   */
  signInCacheMs?: number;
  /** Counts failed sign-ins per name and address, and refuses attempts past the limits unchecked; none: no limit. */
  limiter?: SignInLimiter;
}

/** What a sign-in came to: the identity, or none; `refused` when it was not even checked (too many failures). */
export interface SignInOutcome {
  identity: Identity | undefined;
  remembered: boolean;
  refused?: SignInRefusal;
}

export class IdentityService {
  /** Verified against when a name is unknown, so a wrong name costs the time a wrong password does. */
  private readonly decoyHash: Promise<string>;
  private readonly now: () => Date;
  private readonly signIns: VerifiedSignIns<Identity, SignInRefusal | undefined> | undefined;
  private readonly limiter: SignInLimiter | undefined;

  constructor(
    private readonly records: IdentityRecords,
    options: IdentityServiceOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.signIns = options.signInCacheMs ? new VerifiedSignIns({ ttlMs: options.signInCacheMs }) : undefined;
    this.limiter = options.limiter;
    this.decoyHash = hashPassword(generatePassword());
  }

  /**
   * The identity a name and password sign in as: a user, or a token that is enabled, not expired,
   * and whose password is either of its two. Undefined otherwise, whatever the reason (the
   * caller answers UNAUTHORIZED alike).
   */
  async authenticate(name: string, password: string): Promise<Identity | undefined> {
    return (await this.signIn(name, password)).identity;
  }

  /**
   * As `authenticate`, also saying whether the password was checked now or a sign-in checked a
   * moment ago was taken again (`remembered`): Basic credentials come with every request of a
   * client that sends them straight to /v2, and the audit log records a sign-in once it is
   * checked, not once per request.
   *
   * With a limiter, a check is counted against `name` and `address` (the client's) first, and
   * refused without looking at the password once either has had too many failures (`refused`).
   * A remembered sign-in is not counted: it costs no argon2 work, and only the right password
   * finds it. Neither is a request that waits for the check of the same name and password from
   * the same address (VerifiedSignIns): it is the same guess, and a client's many connections
   * would otherwise use up the name's limit at once each time the sign-in TTL ends.
   */
  async signIn(name: string, password: string, address?: string): Promise<SignInOutcome> {
    // The remembered case first, on its own: it is every request of a client sending Basic
    // credentials, and needs nothing of what a check does (not even its closure).
    const remembered = this.signIns?.get(name, password, this.now());
    if (remembered) return { identity: remembered, remembered: true };
    const limitedCheck = () => this.limitedCheck(name, password, address);
    const answer: SignInAnswer<Identity, SignInRefusal | undefined> = this.signIns
      ? await this.signIns.signIn(name, password, this.now(), address ?? '', limitedCheck)
      : { ...(await limitedCheck()), remembered: false, joined: false };
    if (answer.signIn !== undefined) return { identity: answer.signIn, remembered: answer.remembered };
    // Callers of one address that shared a check share its refusal; only one hears it as the window's first.
    const refused = answer.failure && (answer.joined ? { ...answer.failure, first: false } : answer.failure);
    return { identity: undefined, remembered: false, ...(refused ? { refused } : {}) };
  }

  /** A check counted against the failed sign-in limits first: refused unchecked past them. */
  private async limitedCheck(name: string, password: string, address: string | undefined): Promise<CheckedSignIn<Identity> | FailedCheck<SignInRefusal | undefined>> {
    const refused = await this.limiter?.begin(name, address);
    if (refused) return { failure: refused };
    const found = await this.check(name, password);
    if (found) await this.limiter?.succeeded(name, address);
    return found ?? { failure: undefined };
  }

  /**
   * Counts a failed sign-in that names no identity (a refresh token that does not verify) against
   * the address it came from, first: a refusal when the address has had too many failures.
   */
  async beginUnnamedAttempt(address: string | undefined): Promise<SignInRefusal | undefined> {
    return this.limiter?.begin(undefined, address);
  }

  /** The attempt `beginUnnamedAttempt` counted succeeded: its point goes back to the address. */
  async unnamedAttemptSucceeded(address: string | undefined): Promise<void> {
    await this.limiter?.succeeded(undefined, address);
  }

  /** Checks the password against the stored hashes: the identity, and when it stops signing in. */
  private async check(name: string, password: string): Promise<CheckedSignIn<Identity> | undefined> {
    const user = await this.records.findUser(name);
    if (user) {
      if (!(await verifyPassword(user.passwordHash, password))) return undefined;
      return { signIn: { name, kind: 'user', permissions: Permissions.all() }, expiresAt: null };
    }
    const token = await this.records.findToken(name);
    if (!token) {
      await verifyPassword(await this.decoyHash, password);
      return undefined;
    }
    const hashes = [token.password1Hash, token.password2Hash].filter((hash): hash is string => hash !== null);
    let matched = false;
    for (const hash of hashes) matched = (await verifyPassword(hash, password)) || matched;
    if (!matched || !this.isUsable(token)) return undefined;
    return { signIn: { name, kind: 'token', permissions: permissionsOfToken(token) }, expiresAt: token.expiresAt };
  }

  /** What a signed-in identity may do now; undefined once it is gone, disabled or expired. */
  async currentPermissions(name: string): Promise<Permissions | undefined> {
    if (await this.records.findUser(name)) return Permissions.all();
    const token = await this.records.findToken(name);
    return token && this.isUsable(token) ? permissionsOfToken(token) : undefined;
  }

  /**
   * Makes the user `name` an administrator with `password`: created when absent, its password
   * replaced when it differs (the operator's setting wins). Answers whether anything was written.
   */
  async ensureAdministrator(name: string, password: string): Promise<boolean> {
    const existing = await this.records.findUser(name);
    if (existing && (await verifyPassword(existing.passwordHash, password))) return false;
    const passwordHash = await hashPassword(password);
    if (existing) return this.changing(name, () => this.records.setUserPassword(name, passwordHash));
    // Another gateway of the region may have created it meanwhile, with the same password.
    return this.records.insertUser({ name, passwordHash });
  }

  async hasUser(name: string): Promise<boolean> {
    return (await this.records.findUser(name)) !== undefined;
  }

  /** Creates a user (an administrator); its password is the one given, or a new one returned here once. */
  async createUser(name: string, password?: string): Promise<{ name: string; password: string }> {
    assertIdentityName(name, 'user');
    await this.assertNameFree(name);
    const chosen = password ?? generatePassword();
    if (!(await this.records.insertUser({ name, passwordHash: await hashPassword(chosen) }))) throw new IdentityConflictError(`user ${name} exists`);
    return { name, password: chosen };
  }

  async deleteUser(name: string): Promise<void> {
    if (!(await this.changing(name, () => this.records.deleteUser(name)))) throw new IdentityUnknownError(`no user ${name}`);
  }

  listUsers(): Promise<string[]> {
    return this.records.listUsers();
  }

  async createScopeMap(name: string, repositories: string[], actions: string[]): Promise<ScopeMap> {
    assertIdentityName(name, 'scope map');
    if (repositories.length === 0) throw new IdentityInvalidError('a scope map needs at least one repository pattern');
    if (actions.length === 0) throw new IdentityInvalidError('a scope map needs at least one action');
    for (const pattern of repositories) {
      try {
        assertRepositoryPattern(pattern);
      } catch (err) {
        throw new IdentityInvalidError((err as Error).message);
      }
    }
    const unknown = actions.filter((action) => !isScopeMapAction(action));
    if (unknown.length > 0) throw new IdentityInvalidError(`unknown action ${unknown.join(', ')}: expected content/read, content/write, content/delete, metadata/read or metadata/write`);
    const map = { name, repositories: [...new Set(repositories)], actions: [...new Set(actions)] as ScopeMapAction[] };
    if (!(await this.records.insertScopeMap(map))) throw new IdentityConflictError(`scope map ${name} exists`);
    return map;
  }

  async deleteScopeMap(name: string): Promise<void> {
    const outcome = await this.records.deleteScopeMap(name);
    if (outcome === 'unknown') throw new IdentityUnknownError(`no scope map ${name}`);
    if (outcome === 'in-use') throw new IdentityConflictError(`scope map ${name} is used by a token; delete the token first`);
  }

  listScopeMaps(): Promise<Array<{ name: string; repositories: string[]; actions: string[] }>> {
    return this.records.listScopeMaps();
  }

  /** Creates a token bound to a scope map; its first password is returned here, once. */
  async createToken(name: string, scopeMap: string, expiresAt: Date | null): Promise<{ name: string; scopeMap: string; expiresAt: Date | null; password: string }> {
    assertIdentityName(name, 'token');
    if (expiresAt !== null && !(expiresAt.getTime() > this.now().getTime())) throw new IdentityInvalidError('the expiry must be in the future');
    await this.assertNameFree(name);
    const password = generatePassword();
    const outcome = await this.records.insertToken({ name, scopeMap, password1Hash: await hashPassword(password), expiresAt });
    if (outcome === 'exists') throw new IdentityConflictError(`token ${name} exists`);
    if (outcome === 'no-scope-map') throw new IdentityUnknownError(`no scope map ${scopeMap}`);
    return { name, scopeMap, expiresAt, password };
  }

  async setTokenDisabled(name: string, disabled: boolean): Promise<void> {
    if (!(await this.changing(name, () => this.records.setTokenDisabled(name, disabled)))) throw new IdentityUnknownError(`no token ${name}`);
  }

  /** Replaces one of the token's two passwords with a new one, returned here once; the other keeps working. */
  async rotateTokenPassword(name: string, slot: 1 | 2): Promise<{ name: string; slot: 1 | 2; password: string }> {
    const password = generatePassword();
    const passwordHash = await hashPassword(password);
    if (!(await this.changing(name, () => this.records.setTokenPassword(name, slot, passwordHash)))) throw new IdentityUnknownError(`no token ${name}`);
    return { name, slot, password };
  }

  async deleteToken(name: string): Promise<void> {
    if (!(await this.changing(name, () => this.records.deleteToken(name)))) throw new IdentityUnknownError(`no token ${name}`);
  }

  listTokens(): Promise<Array<{ name: string; scopeMap: string; expiresAt: Date | null; disabled: boolean }>> {
    return this.records.listTokens();
  }

  /**
   * Drops what was remembered of these names' sign-ins: their rows were changed by someone
   * else (in a cluster, the copy of the control plane's identities was replaced).
   */
  forgetSignIns(names: Iterable<string>): void {
    for (const name of names) this.signIns?.forget(name);
  }

  /**
   * Runs a write that changes how `name` signs in, then drops its remembered sign-ins. Dropping
   * after the write, and refusing to remember what a check begun before it found, leaves no
   * moment at which the old password could be remembered anew.
   */
  private async changing<R>(name: string, write: () => Promise<R>): Promise<R> {
    try {
      return await write();
    } finally {
      this.signIns?.forget(name);
    }
  }

  private isUsable(token: TokenRecord): boolean {
    return !token.disabled && (token.expiresAt === null || token.expiresAt.getTime() > this.now().getTime());
  }

  /** Users and tokens share one namespace: the name a client signs in with must say which it is. */
  private async assertNameFree(name: string): Promise<void> {
    if ((await this.records.findUser(name)) || (await this.records.findToken(name))) throw new IdentityConflictError(`${name} is taken by a user or token`);
  }
}

function permissionsOfToken(token: TokenRecord): Permissions {
  return Permissions.of([{ ...token.scopeMap, actions: token.scopeMap.actions.filter(isScopeMapAction) }]);
}

function assertIdentityName(name: string, what: string): void {
  if (name.length > MAX_NAME_LENGTH || !IDENTITY_NAME.test(name)) {
    throw new IdentityInvalidError(`"${name.slice(0, MAX_NAME_LENGTH)}" is not a ${what} name: expected lower-case letters and digits, separated by . _ or -, up to ${MAX_NAME_LENGTH} characters`);
  }
}

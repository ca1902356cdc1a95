import type { Queryable } from './db.js';

export interface UserRow {
  name: string;
  passwordHash: string;
}

export interface ScopeMapRow {
  name: string;
  repositories: string[];
  actions: string[];
}

export interface TokenRow {
  name: string;
  scopeMap: ScopeMapRow;
  password1Hash: string | null;
  password2Hash: string | null;
  expiresAt: Date | null;
  disabled: boolean;
}

/**
 * Everything a region needs to decide who may do what, as the control plane hands it to every
 * region of a cluster: users and tokens with their password hashes, and the scope maps.
 */
export interface IdentitySnapshot {
  users: UserRow[];
  scopeMaps: ScopeMapRow[];
  tokens: Array<{ name: string; scopeMap: string; password1Hash: string | null; password2Hash: string | null; expiresAt: Date | null; disabled: boolean }>;
}

/** A public key that verifies tokens signed elsewhere in the cluster. */
export interface PeerKeyRow {
  kid: string;
  region: string;
  publicJwk: Record<string, unknown>;
}

export interface SigningKeyRow {
  kid: string;
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
}

/** Postgres' unique_violation: the row is there already. */
const UNIQUE_VIOLATION = '23505';
/** Postgres' foreign_key_violation: a scope map still in use, or one that is not there. */
const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Users, scope maps, tokens and signing keys of the region (migration 1733100000000). Stores
 * hashes only; whoever calls hashes and verifies. Writes answer whether they found their row,
 * so the caller can say "no such token" without a second query.
 */
export class IdentityStore {
  constructor(private readonly db: Queryable) {}

  async findUser(name: string): Promise<UserRow | undefined> {
    const result = await this.db.query<UserRow>('SELECT name, password_hash AS "passwordHash" FROM users WHERE name = $1', [name]);
    return result.rows[0];
  }

  /** False when a user of that name exists. */
  async insertUser(user: UserRow): Promise<boolean> {
    return inserted(this.db.query('INSERT INTO users (name, password_hash) VALUES ($1, $2)', [user.name, user.passwordHash]));
  }

  async setUserPassword(name: string, passwordHash: string): Promise<boolean> {
    const result = await this.db.query('UPDATE users SET password_hash = $2 WHERE name = $1', [name, passwordHash]);
    return result.rowCount === 1;
  }

  async deleteUser(name: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM users WHERE name = $1', [name])).rowCount === 1;
  }

  async listUsers(): Promise<string[]> {
    return (await this.db.query<{ name: string }>('SELECT name FROM users ORDER BY name')).rows.map((row) => row.name);
  }

  /** False when a scope map of that name exists. */
  async insertScopeMap(map: ScopeMapRow): Promise<boolean> {
    return inserted(this.db.query('INSERT INTO scope_maps (name, repositories, actions) VALUES ($1, $2, $3)', [map.name, map.repositories, map.actions]));
  }

  async findScopeMap(name: string): Promise<ScopeMapRow | undefined> {
    return (await this.db.query<ScopeMapRow>('SELECT name, repositories, actions FROM scope_maps WHERE name = $1', [name])).rows[0];
  }

  async listScopeMaps(): Promise<ScopeMapRow[]> {
    return (await this.db.query<ScopeMapRow>('SELECT name, repositories, actions FROM scope_maps ORDER BY name')).rows;
  }

  /** `in-use` while a token is bound to it. */
  async deleteScopeMap(name: string): Promise<'deleted' | 'unknown' | 'in-use'> {
    try {
      const result = await this.db.query('DELETE FROM scope_maps WHERE name = $1', [name]);
      return result.rowCount === 1 ? 'deleted' : 'unknown';
    } catch (err) {
      if ((err as { code?: string }).code === FOREIGN_KEY_VIOLATION) return 'in-use';
      throw err;
    }
  }

  /** `exists` when a token of that name exists, `no-scope-map` when its scope map does not. */
  async insertToken(token: { name: string; scopeMap: string; password1Hash: string; expiresAt: Date | null }): Promise<'created' | 'exists' | 'no-scope-map'> {
    try {
      await this.db.query('INSERT INTO tokens (name, scope_map, password1_hash, expires_at) VALUES ($1, $2, $3, $4)', [
        token.name,
        token.scopeMap,
        token.password1Hash,
        token.expiresAt,
      ]);
      return 'created';
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === UNIQUE_VIOLATION) return 'exists';
      if (code === FOREIGN_KEY_VIOLATION) return 'no-scope-map';
      throw err;
    }
  }

  async findToken(name: string): Promise<TokenRow | undefined> {
    const result = await this.db.query<Omit<TokenRow, 'scopeMap'> & { scopeMapName: string; repositories: string[]; actions: string[] }>(
      `SELECT t.name, t.password1_hash AS "password1Hash", t.password2_hash AS "password2Hash", t.expires_at AS "expiresAt",
              t.disabled, s.name AS "scopeMapName", s.repositories, s.actions
         FROM tokens t JOIN scope_maps s ON s.name = t.scope_map WHERE t.name = $1`,
      [name],
    );
    const row = result.rows[0];
    if (!row) return undefined;
    const { scopeMapName, repositories, actions, ...token } = row;
    return { ...token, scopeMap: { name: scopeMapName, repositories, actions } };
  }

  async listTokens(): Promise<Array<{ name: string; scopeMap: string; expiresAt: Date | null; disabled: boolean }>> {
    const result = await this.db.query<{ name: string; scopeMap: string; expiresAt: Date | null; disabled: boolean }>(
      'SELECT name, scope_map AS "scopeMap", expires_at AS "expiresAt", disabled FROM tokens ORDER BY name',
    );
    return result.rows;
  }

  async setTokenDisabled(name: string, disabled: boolean): Promise<boolean> {
    return (await this.db.query('UPDATE tokens SET disabled = $2 WHERE name = $1', [name, disabled])).rowCount === 1;
  }

  async setTokenPassword(name: string, slot: 1 | 2, passwordHash: string): Promise<boolean> {
    const column = slot === 1 ? 'password1_hash' : 'password2_hash';
    return (await this.db.query(`UPDATE tokens SET ${column} = $2 WHERE name = $1`, [name, passwordHash])).rowCount === 1;
  }

  async deleteToken(name: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM tokens WHERE name = $1', [name])).rowCount === 1;
  }

  /**
   * The key that signs the region's tokens, of those it holds: the newest that has been stored for
   * `rotation.activationSeconds`, else (just after the first) the oldest. `candidate` is stored
   * first when there is no key, or, with `rotation`, when the newest is older than
   * `rotation.replaceAfterSeconds`: it signs nothing until its activation time has passed, so the
   * other regions can learn it first. Keys it replaces stay, verifying what they signed, until
   * dropReplacedKeys. Call it inside a transaction: the table lock makes gateways take turns, so
   * the second finds the first's key rather than adding its own (two keys, each gateway verifying
   * only what it had read, would refuse each other's tokens).
   */
  async ensureSigningKey(candidate: SigningKeyRow, rotation?: { replaceAfterSeconds: number; activationSeconds: number }): Promise<SigningKeyRow> {
    await this.db.query('LOCK TABLE signing_keys IN EXCLUSIVE MODE');
    await this.db.query(
      `INSERT INTO signing_keys (kid, private_jwk, public_jwk) SELECT $1, $2, $3
        WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE private_jwk IS NOT NULL AND ($4::float8 IS NULL OR created_at > now() - make_interval(secs => $4)))`,
      [candidate.kid, candidate.privateJwk, candidate.publicJwk, rotation?.replaceAfterSeconds ?? null],
    );
    const result = await this.db.query<SigningKeyRow & { active: boolean }>(
      `SELECT kid, private_jwk AS "privateJwk", public_jwk AS "publicJwk", created_at <= now() - make_interval(secs => $1) AS active
         FROM signing_keys WHERE private_jwk IS NOT NULL ORDER BY created_at, kid`,
      [rotation?.activationSeconds ?? 0],
    );
    const chosen = result.rows.filter((row) => row.active).pop() ?? result.rows[0]!;
    return { kid: chosen.kid, privateJwk: chosen.privateJwk, publicJwk: chosen.publicJwk };
  }

  /**
   * Forgets the region's own keys that a newer one replaced more than `afterSeconds` ago (count
   * the activation delay and the longest token lifetime in it): nothing they signed is still
   * valid. Answers how many it dropped; the control plane keeps publishing none of them.
   */
  async dropReplacedKeys(afterSeconds: number): Promise<number> {
    const result = await this.db.query(
      `DELETE FROM signing_keys old WHERE old.private_jwk IS NOT NULL AND EXISTS (
         SELECT 1 FROM signing_keys newer WHERE newer.private_jwk IS NOT NULL AND newer.created_at > old.created_at
            AND newer.created_at < now() - make_interval(secs => $1))`,
      [afterSeconds],
    );
    return result.rowCount ?? 0;
  }

  /** Every public key tokens may be signed with: the region's own, and in a cluster the other regions'. */
  async publicKeys(): Promise<Array<Record<string, unknown>>> {
    return (await this.db.query<{ publicJwk: Record<string, unknown> }>('SELECT public_jwk AS "publicJwk" FROM signing_keys ORDER BY created_at')).rows.map((row) => row.publicJwk);
  }

  /** The public keys of the keys this region signs with (those it holds the private part of). */
  async ownPublicKeys(): Promise<Array<Record<string, unknown>>> {
    const result = await this.db.query<{ publicJwk: Record<string, unknown> }>(
      'SELECT public_jwk AS "publicJwk" FROM signing_keys WHERE private_jwk IS NOT NULL ORDER BY created_at',
    );
    return result.rows.map((row) => row.publicJwk);
  }

  /**
   * Makes the other regions' keys those of `keys` (the cluster's key set), leaving the region's
   * own keys alone. Answers whether anything changed.
   */
  async replacePeerKeys(keys: readonly PeerKeyRow[]): Promise<boolean> {
    const kids = keys.map((key) => key.kid);
    const removed = await this.db.query('DELETE FROM signing_keys WHERE private_jwk IS NULL AND NOT (kid = ANY($1::text[]))', [kids]);
    const added = await this.db.query(
      `INSERT INTO signing_keys (kid, region, public_jwk)
       SELECT k.kid, k.region, k.public_jwk FROM jsonb_to_recordset($1::jsonb) AS k(kid text, region text, public_jwk jsonb)
       ON CONFLICT (kid) DO NOTHING`,
      [JSON.stringify(keys.map((key) => ({ kid: key.kid, region: key.region, public_jwk: key.publicJwk })))],
    );
    return (removed.rowCount ?? 0) + (added.rowCount ?? 0) > 0;
  }

  /** Every identity, with password hashes: what the control plane hands each region. */
  async snapshot(): Promise<IdentitySnapshot> {
    // One after the other: inside a transaction, the three share one connection.
    const users = await this.db.query<UserRow>('SELECT name, password_hash AS "passwordHash" FROM users ORDER BY name');
    const scopeMaps = await this.listScopeMaps();
    const tokens = await this.db.query<IdentitySnapshot['tokens'][number]>(
      `SELECT name, scope_map AS "scopeMap", password1_hash AS "password1Hash", password2_hash AS "password2Hash",
              expires_at AS "expiresAt", disabled FROM tokens ORDER BY name`,
    );
    return { users: users.rows, scopeMaps, tokens: tokens.rows };
  }

  /**
   * Makes the stored identities exactly those of `snapshot`; call it inside a transaction, so
   * that a reader sees the old set or the new one. Answers whether anything changed (an
   * unchanged snapshot writes nothing).
   */
  async replaceWith(snapshot: IdentitySnapshot): Promise<boolean> {
    // One replace at a time: two writers interleaving their deletes and inserts would collide.
    await this.db.query('LOCK TABLE users, scope_maps, tokens IN EXCLUSIVE MODE');
    const before = await this.snapshot();
    if (changedSignIns(before, snapshot).length === 0 && canonicalRows(before).scopeMaps === canonicalRows(snapshot).scopeMaps) return false;
    await this.db.query('DELETE FROM tokens');
    await this.db.query('DELETE FROM scope_maps');
    await this.db.query('DELETE FROM users');
    await this.db.query(
      'INSERT INTO users (name, password_hash) SELECT name, password_hash FROM jsonb_to_recordset($1::jsonb) AS u(name text, password_hash text)',
      [JSON.stringify(snapshot.users.map((user) => ({ name: user.name, password_hash: user.passwordHash })))],
    );
    await this.db.query(
      'INSERT INTO scope_maps (name, repositories, actions) SELECT name, repositories, actions FROM jsonb_to_recordset($1::jsonb) AS s(name text, repositories text[], actions text[])',
      [JSON.stringify(snapshot.scopeMaps)],
    );
    await this.db.query(
      `INSERT INTO tokens (name, scope_map, password1_hash, password2_hash, expires_at, disabled)
       SELECT name, scope_map, password1_hash, password2_hash, expires_at, disabled
         FROM jsonb_to_recordset($1::jsonb) AS t(name text, scope_map text, password1_hash text, password2_hash text, expires_at timestamptz, disabled boolean)`,
      [
        JSON.stringify(
          snapshot.tokens.map((token) => ({
            name: token.name,
            scope_map: token.scopeMap,
            password1_hash: token.password1Hash,
            password2_hash: token.password2Hash,
            expires_at: token.expiresAt,
            disabled: token.disabled,
          })),
        ),
      ],
    );
    return true;
  }
}

/**
 * The users and tokens that sign in differently in `after` than in `before`: added, removed, or
 * changed in password, state, expiry or scope map (its name or its content).
 */
export function changedSignIns(before: IdentitySnapshot, after: IdentitySnapshot): string[] {
  const old = canonicalRows(before).signIns;
  const now = canonicalRows(after).signIns;
  return [...new Set([...old.keys(), ...now.keys()])].filter((name) => old.get(name) !== now.get(name));
}

/**
 * A snapshot as comparable text: each user's and token's sign-in (a token's with its scope map's
 * content) by name, and the scope maps; expiry times as instants, whatever type they arrived as.
 */
function canonicalRows(snapshot: IdentitySnapshot): { signIns: Map<string, string>; scopeMaps: string } {
  const maps = new Map(snapshot.scopeMaps.map((map) => [map.name, [map.repositories, map.actions]]));
  const signIns = new Map<string, string>();
  for (const user of snapshot.users) signIns.set(user.name, JSON.stringify(['user', user.passwordHash]));
  for (const token of snapshot.tokens) {
    const expiry = token.expiresAt === null ? null : new Date(token.expiresAt).getTime();
    signIns.set(token.name, JSON.stringify(['token', token.password1Hash, token.password2Hash, expiry, token.disabled, token.scopeMap, maps.get(token.scopeMap)]));
  }
  const scopeMaps = JSON.stringify([...maps.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { signIns, scopeMaps };
}

async function inserted(query: Promise<unknown>): Promise<boolean> {
  try {
    await query;
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) return false;
    throw err;
  }
}

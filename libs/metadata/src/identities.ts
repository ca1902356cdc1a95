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
   * The key that signs the region's tokens: the oldest stored, or `candidate` stored now when
   * there is none. Call it inside a transaction: the table lock makes gateways starting together
   * take turns, so the second finds the first's key rather than adding its own (two keys, each
   * gateway verifying only what it had read, would refuse each other's tokens).
   */
  async ensureSigningKey(candidate: SigningKeyRow): Promise<SigningKeyRow> {
    await this.db.query('LOCK TABLE signing_keys IN EXCLUSIVE MODE');
    await this.db.query('INSERT INTO signing_keys (kid, private_jwk, public_jwk) SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM signing_keys)', [
      candidate.kid,
      candidate.privateJwk,
      candidate.publicJwk,
    ]);
    const result = await this.db.query<SigningKeyRow>(
      'SELECT kid, private_jwk AS "privateJwk", public_jwk AS "publicJwk" FROM signing_keys ORDER BY created_at, kid LIMIT 1',
    );
    return result.rows[0]!;
  }

  /** Every public key tokens may be signed with. */
  async publicKeys(): Promise<Array<Record<string, unknown>>> {
    return (await this.db.query<{ publicJwk: Record<string, unknown> }>('SELECT public_jwk AS "publicJwk" FROM signing_keys ORDER BY created_at')).rows.map((row) => row.publicJwk);
  }
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

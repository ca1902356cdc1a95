import type { AuditPage } from '@meridian/proto';
import { UntrustedCertificateError, type ClusterFetch } from '@meridian/proto/cluster-http';
import { CommandError } from './errors.js';

const REQUEST_TIMEOUT_MS = 30_000;

export interface ScopeMapRecord {
  name: string;
  repositories: string[];
  actions: string[];
}

export interface TokenRecord {
  name: string;
  scopeMap: string;
  expiresAt: string | null;
  disabled: boolean;
}

/**
 * The identity admin API of a gateway (`/api/v1/users|scope-maps|tokens`, with MERIDIAN_AUTH=on),
 * as an administrator: Basic credentials on every request. Failures are CommandErrors, one line:
 * the gateway's own message when it answered with an error body, else what kept it from answering.
 */
export class IdentityClient {
  private readonly authorization: string | undefined;

  constructor(
    readonly server: string,
    /** The command's HTTP client (clusterHttpFor): trusts --ca or MERIDIAN_TLS_CA. */
    private readonly fetch: ClusterFetch,
    user: string,
    /** Undefined: no credentials are sent (the audit log of a gateway with MERIDIAN_AUTH=off). */
    password: string | undefined,
  ) {
    this.authorization = password === undefined ? undefined : `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  }

  /** One page of the audit log (`/api/v1/audit`), of a gateway or of the control plane. */
  auditPage(query: { since?: Date; after?: string; limit: number }): Promise<AuditPage> {
    const parameters = new URLSearchParams({ limit: String(query.limit) });
    if (query.since) parameters.set('since', query.since.toISOString());
    if (query.after) parameters.set('after', query.after);
    return this.send('GET', `/audit?${parameters}`);
  }

  createUser(name: string, password?: string): Promise<{ name: string; password?: string }> {
    return this.send('POST', '/users', { name, ...(password === undefined ? {} : { password }) });
  }

  deleteUser(name: string): Promise<void> {
    return this.send('DELETE', `/users/${encodeURIComponent(name)}`);
  }

  listUsers(): Promise<{ users: string[] }> {
    return this.send('GET', '/users');
  }

  createScopeMap(map: ScopeMapRecord): Promise<ScopeMapRecord> {
    return this.send('POST', '/scope-maps', map);
  }

  deleteScopeMap(name: string): Promise<void> {
    return this.send('DELETE', `/scope-maps/${encodeURIComponent(name)}`);
  }

  listScopeMaps(): Promise<{ scopeMaps: ScopeMapRecord[] }> {
    return this.send('GET', '/scope-maps');
  }

  createToken(token: { name: string; scopeMap: string; expiresAt?: string }): Promise<TokenRecord & { password: string }> {
    return this.send('POST', '/tokens', token);
  }

  setTokenEnabled(name: string, enabled: boolean): Promise<void> {
    return this.send('POST', `/tokens/${encodeURIComponent(name)}/${enabled ? 'enable' : 'disable'}`);
  }

  rotateTokenPassword(name: string, slot: 1 | 2): Promise<{ name: string; slot: 1 | 2; password: string }> {
    return this.send('POST', `/tokens/${encodeURIComponent(name)}/passwords/${slot}`);
  }

  deleteToken(name: string): Promise<void> {
    return this.send('DELETE', `/tokens/${encodeURIComponent(name)}`);
  }

  listTokens(): Promise<{ tokens: TokenRecord[] }> {
    return this.send('GET', '/tokens');
  }

  private async send<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.server}/api/v1${path}`;
    const headers: Record<string, string> = this.authorization ? { authorization: this.authorization } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await this.fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }).catch((err: Error & { cause?: { code?: string } }) => {
      if (err instanceof UntrustedCertificateError) throw new CommandError(err.message);
      const reason = err.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : (err.cause?.code ?? err.message);
      throw new CommandError(`cannot reach ${this.server} (${reason}): start it or pass --server`);
    });
    if (response.status === 204) return undefined as T;
    const answer = (await response.json().catch(() => undefined)) as { errors?: Array<{ message?: string }>; error?: { message?: string } } | undefined;
    if (response.ok && answer !== undefined) return answer as T;
    // A gateway answers with the OCI error body, a control plane with its own.
    const message = answer?.errors?.[0]?.message ?? answer?.error?.message;
    if (response.status === 401) throw new CommandError(`${this.server} refused the administrator's credentials (${message ?? 'unauthorized'}): check --user and --password or MERIDIAN_ADMIN_PASSWORD`);
    if (message) throw new CommandError(message);
    throw new CommandError(`${method} ${url} answered ${response.status} ${response.statusText}: is ${this.server} a gateway or control plane with MERIDIAN_AUTH=on?`);
  }
}

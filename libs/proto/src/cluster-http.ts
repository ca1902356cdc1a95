/**
 * HTTP between a cluster's processes (a region's calls to the control plane, the worker's, the
 * control plane's probes of the regions, the router's, the `meridian` command's): one way to
 * trust the cluster's authority (MERIDIAN_TLS_CA) besides the system's, built once per process
 * by its composition root, and one clear error when an https:// address presents a certificate
 * nothing trusted signed. Kept apart from the replica protocol's module so that the CLI loads
 * no gRPC.
 */
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';

/** What makes Node's TLS refuse a certificate chain (its `code`), as opposed to a network fault. */
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * An https:// address whose certificate this process does not accept. The message is one line
 * naming the address, Node's reason and the setting that fixes it (`trustSetting`).
 */
export class UntrustedCertificateError extends Error {
  constructor(
    readonly origin: string,
    readonly reason: string,
    trustSetting: string,
  ) {
    super(
      reason === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? `${origin} presents a certificate for another name (${reason}): its certificate must name the host it is reached by`
        : `${origin} presents a certificate that no trusted authority signed (${reason}): set ${trustSetting} to the PEM file of the authority that signed it`,
    );
    this.name = 'UntrustedCertificateError';
  }
}

export interface ClusterHttpOptions {
  /** The cluster's authority (PEM), trusted besides the system's. Undefined: the system's only. */
  ca?: Buffer;
  /** What the one-line error tells an operator to set: MERIDIAN_TLS_CA, or the CLI's `--ca FILE or MERIDIAN_TLS_CA`. */
  trustSetting?: string;
  /** Connection pool settings (timeouts, keep-alive) for a process that tunes them, as the router does. */
  agent?: Omit<Agent.Options, 'connect'> & { connect?: { timeout?: number } };
}

/**
 * A process's HTTP client to the rest of its cluster. Every caller in the process shares it, so
 * every call trusts the same authorities; `close` ends its pooled connections at shutdown.
 */
export interface ClusterHttp {
  /** The connection pool (an undici Agent), for callers speaking undici's own `request`. */
  readonly dispatcher: Dispatcher;
  /**
   * `fetch` through the pool. Rejects as `fetch` does, except that a certificate the process does
   * not trust rejects with an UntrustedCertificateError (a one-line message naming the setting).
   */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
  /** The same judgement for a caller of `dispatcher.request`: the error to report for `err`. */
  explain(url: string | URL, err: unknown): unknown;
  /**
   * Opens a connection to `origin` (http: or https:) as the pool would, for a caller speaking
   * HTTP over it itself: the same authorities, server name and connect timeout. `callback` has
   * the socket once it is connected (TLS: once the handshake is done).
   */
  connect(origin: URL, callback: (err: Error | null, socket: Socket | null) => void): void;
  close(): Promise<void>;
}

/** ClusterHttp.fetch, what a part that only calls over HTTP is handed. */
export type ClusterFetch = ClusterHttp['fetch'];

/** Builds the process's ClusterHttp; call it once, in the composition root. */
export function createClusterHttp(options: ClusterHttpOptions = {}): ClusterHttp {
  const trustSetting = options.trustSetting ?? 'MERIDIAN_TLS_CA';
  // Node's `ca` replaces the system's authorities; a private one is trusted besides them.
  const ca = options.ca ? [...tls.rootCertificates, options.ca.toString()] : undefined;
  const connectOptions = { ...options.agent?.connect, ...(ca ? { ca } : {}) };
  const agent = new Agent({ ...options.agent, connect: connectOptions });
  // undici's own connector, as the Agent builds it from the same options, for `connect`.
  const connector = buildConnector(connectOptions);
  const explain = (url: string | URL, err: unknown): unknown => {
    const reason = certificateRefusal(err);
    return reason ? new UntrustedCertificateError(new URL(url).origin, reason, trustSetting) : err;
  };
  return {
    dispatcher: agent,
    // Node's fetch takes an undici dispatcher; its RequestInit type does not name that field.
    fetch: (url, init) => fetch(url, { ...init, dispatcher: agent } as RequestInit).catch((err: unknown) => Promise.reject(explain(url, err))),
    explain,
    connect: (origin, callback) =>
      // What undici's client passes its connector for an origin (IPv6 literals without brackets).
      connector({ host: origin.host, hostname: origin.hostname.replace(/^\[(.*)\]$/, '$1'), protocol: origin.protocol, port: origin.port }, (err, socket) =>
        callback(err, socket as Socket | null),
      ),
    close: () => agent.close(),
  };
}

/** The TLS verification code behind a failed request (fetch hides it in `cause`), if that is why it failed. */
function certificateRefusal(err: unknown): string | undefined {
  for (let current = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; current && depth < 4; current = current.cause as typeof current, depth++) {
    if (typeof current.code === 'string' && UNTRUSTED_CERTIFICATE_CODES.has(current.code)) return current.code;
  }
  return undefined;
}

/**
 * A PEM file named by a setting (`variable`). One that cannot be read fails with a message
 * naming the setting and the file, made into the service's own start error by `toError`.
 */
export async function readPemFile(file: string, variable: string, toError: (message: string) => Error = (message) => new Error(message)): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw toError(`${variable}=${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * The request header with which the router, proxying a blob GET to a region, asks for a redirect
 * instead of the bytes: the region answers 307 to itself (with a signed URL when auth is on), so
 * the bytes go from the region to the client and not through the router. A gateway honours it
 * only from a trusted proxy (MERIDIAN_TRUSTED_PROXIES); the router drops it from clients.
 */
export const BLOB_REDIRECT_HEADER = 'meridian-blob-redirect';

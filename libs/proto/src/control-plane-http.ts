/**
 * Requests from a process of the cluster (a region's gateway, the replication worker) to the
 * control plane's admin API, built one way: JSON bodies, the process's service token on every
 * request, a timeout on each, and one error for every way a request fails. Kept apart from the
 * replica protocol's module, as cluster-http.ts is, so that a caller loads no gRPC.
 */
import type { ClusterFetch } from './cluster-http.js';

/** How long one request to the control plane may take, unless the caller says otherwise. */
const DEFAULT_TIMEOUT_MS = 10_000;

/** How much of an error answer's body a message quotes. */
const QUOTED_BODY_CHARACTERS = 300;

/**
 * A request to the control plane that did not succeed: it could not be sent or was not answered
 * in time (`status` undefined), or it was answered with a status other than 2xx. The message is
 * one line: the method, the path, and what happened.
 */
export class ControlPlaneRequestError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = 'ControlPlaneRequestError';
  }

  /** Whether trying again later may succeed: the control plane was away, failing (5xx) or busy (429), rather than refusing. */
  get transient(): boolean {
    return this.status === undefined || this.status >= 500 || this.status === 429;
  }
}

export interface RequestOptions {
  /** This request's own timeout, where the caller cannot wait as long as others. */
  timeoutMs?: number;
}

export interface ControlPlaneHttpOptions {
  /** The admin API, e.g. http://127.0.0.1:5100. */
  url: string;
  /** The process's HTTP client (ClusterHttp.fetch): trusts the cluster's authority. */
  fetch: ClusterFetch;
  /** Headers that prove this process to the control plane (a service token), asked for at each request. */
  headers?: () => Promise<Record<string, string>>;
  timeoutMs?: number;
}

/**
 * The admin API as one process of the cluster calls it. Every method sends `body` as JSON when it
 * is given, and rejects with a ControlPlaneRequestError unless the answer is 2xx; a rejected
 * answer's body is read (a line of it quoted) or discarded, never left holding the connection.
 */
export class ControlPlaneHttp {
  readonly url: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: ControlPlaneHttpOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The 2xx answer's body, parsed as JSON (undefined when it is empty, as a 204's is). */
  async json<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, body, options);
    const text = await response.text();
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** For a request whose answer says nothing but its status: the body is discarded. */
  async send(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<void> {
    const response = await this.request(method, path, body, options);
    await response.body?.cancel().catch(() => undefined);
  }

  private async request(method: string, path: string, body: unknown, options: RequestOptions): Promise<Response> {
    let response: Response;
    try {
      response = await this.options.fetch(`${this.url}${path}`, {
        method,
        headers: { ...(await this.options.headers?.()), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs),
      });
    } catch (err) {
      throw new ControlPlaneRequestError(`${method} ${path}: the control plane at ${this.url} cannot be reached: ${reasonOf(err)}`, undefined);
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '');
      throw new ControlPlaneRequestError(`${method} ${path}: the control plane answered ${response.status}${text ? `: ${text.slice(0, QUOTED_BODY_CHARACTERS)}` : ''}`, response.status);
    }
    return response;
  }
}

/** What kept a request from being answered, in a few words: the network's code where there is one. */
function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return 'no answer in time';
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? err.message;
}

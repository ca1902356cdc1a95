import type { ReferenceStatus, RegionRecord } from '@meridian/proto';
import { CommandError } from './errors.js';

/** How long one request may take: adding a region queues its whole backfill before answering. */
const REQUEST_TIMEOUT_MS = 120_000;

export type StatusAnswer = ({ repository: string; reference: string } & ReferenceStatus) | { repository: string; tags: ReferenceStatus[] };

/**
 * The admin API of the control plane (`/api/v1`). Every failure is a CommandError whose message
 * is one line saying what was tried: the server's own message when it answered with an error,
 * else what kept the request from being answered.
 */
export class ControlPlaneClient {
  constructor(readonly server: string) {}

  listRegions(): Promise<{ regions: RegionRecord[] }> {
    return this.request('GET', '/api/v1/regions');
  }

  addRegion(region: { name: string; http: string; grpc: string; lat: number; lon: number }): Promise<RegionRecord> {
    return this.request('POST', '/api/v1/regions', region);
  }

  removeRegion(name: string, purge: boolean): Promise<RegionRecord> {
    return this.request('DELETE', `/api/v1/regions/${encodeURIComponent(name)}${purge ? '?purge=true' : ''}`);
  }

  status(repository: string, reference?: string): Promise<StatusAnswer> {
    const query = new URLSearchParams({ repository, ...(reference === undefined ? {} : { reference }) });
    return this.request('GET', `/api/v1/replication/status?${query}`);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const what = `${method} ${this.server}${path}`;
    let response: Response;
    try {
      response = await fetch(`${this.server}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new CommandError(unreachable(this.server, err));
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.ok && parsed !== undefined) return parsed as T;
    const error = (parsed as { error?: { message?: unknown } } | undefined)?.error;
    if (typeof error?.message === 'string') throw new CommandError(error.message);
    throw new CommandError(`${what} answered ${response.status} ${response.statusText} without a control plane answer: is ${this.server} the control plane?`);
  }
}

function unreachable(server: string, err: unknown): string {
  const error = err as Error & { cause?: { code?: string; message?: string } };
  if (error.name === 'TimeoutError') return `the control plane at ${server} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const reason = error.cause?.code ?? error.cause?.message ?? error.message;
  return `cannot reach the control plane at ${server} (${reason}): start it or pass --server`;
}

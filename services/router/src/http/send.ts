import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegionUnavailableError, toOciError } from '@meridian/oci';

/**
 * The one place the router turns an error into a response (CONTRIBUTING.md, 'Errors'): the OCI
 * error body with the status from libs/oci's table. Anything not a known error is UNKNOWN/500
 * and logged; its text is not sent. An answer already under way can only be cut off.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): void {
  const { status, body, unexpected } = toOciError(err);
  if (unexpected) logger.error({ err, method: req.method, url: req.url?.slice(0, 200) }, 'request failed');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'docker-distribution-api-version': 'registry/2.0',
  };
  // Health probes run every second or so: a client may try again about then.
  if (err instanceof RegionUnavailableError) headers['retry-after'] = 1;
  // The body was not read; it must not be parsed as the next request on this connection.
  if (!req.complete) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : payload);
}

/** A JSON answer of the router's own (health, readiness), never cached. */
export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : payload);
}

import type { Response } from 'express';

/**
 * A 200 JSON body written directly: express's res.json also negotiates charset and freshness,
 * which the listing endpoints (paged many times per walk) do not need.
 */
export function sendJson(res: Response, body: unknown, contentType = 'application/json'): void {
  const payload = JSON.stringify(body);
  res.statusCode = 200;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.end(payload);
}

/**
 * Requests from a chosen loopback address. Loopback has a whole /8: a request sent from
 * 127.0.0.2 comes from another client address than one from 127.0.0.1, which is how tests of
 * per-address limits and of trusted proxies play several clients on one machine.
 */
import http from 'node:http';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** The Authorization value of Basic credentials (RFC 7617). */
export const basic = (name: string, password: string) => `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;

/** One request on a new connection, from `from` (a loopback address; 127.0.0.1 unless given). */
export function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; from?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false, localAddress: opts.from ?? '127.0.0.1' }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks).toString() }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(opts.body);
  });
}

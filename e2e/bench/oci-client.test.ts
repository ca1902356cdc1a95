import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadAndCount } from './oci-client.js';

/**
 * The bench's pull check: before a pull scenario's timed rounds, every target must send each
 * blob's exact bytes. A server answering with the right number of wrong bytes must fail it.
 */
let server: http.Server;
let base: URL;
const agent = new Agent();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const body = req.url === '/right' ? 'blob' : 'bloc';
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

afterAll(async () => {
  await agent.close();
  await new Promise((resolve) => server.close(resolve));
});

describe('downloadAndCount', () => {
  const digest = `sha256:${createHash('sha256').update('blob').digest('hex')}`;

  it('passes the exact bytes, checked by digest', async () => {
    expect(await downloadAndCount(agent, new URL('/right', base), 4, digest)).toBe(4);
  });

  it('fails bytes of the right length that do not hash to the digest', async () => {
    await expect(downloadAndCount(agent, new URL('/wrong', base), 4, digest)).rejects.toThrow(/do not hash/);
    // Without a digest (the timed pulls) only the length is checked.
    expect(await downloadAndCount(agent, new URL('/wrong', base), 4)).toBe(4);
  });
});

import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobUrlSigner } from '@meridian/auth';
import { BLOB_REDIRECT_HEADER } from '@meridian/proto/cluster-http';
import { sha256 } from '@meridian/testkit';
import { startTestGateway, type TestGateway } from './testing/test-gateway.js';

// A blob GET through the router (with auth on) is proxied with the blob-redirect header, and the
// region answers 307 to a URL signed for that repository and digest, which a client follows
// without credentials (it does not resend Authorization to another host). distribution-spec
// v1.1 "Pulling blobs" lets a blob GET be answered with a redirect; "Error Codes" UNAUTHORIZED.

const ADMIN_PASSWORD = 'signed-blob-urls-admin-password';
const UPLOAD_SECRET = 'signed-blob-urls-upload-secret-of-32-characters-at-least';
const basic = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;

describe('signed blob redirects (MERIDIAN_AUTH=on, the router a trusted proxy)', () => {
  let gateway: TestGateway;
  const bytes = Buffer.from('the layer a signed URL reads, and nothing else');
  const digest = sha256(bytes);
  const other = Buffer.from('another blob of the same repository');
  const otherDigest = sha256(other);
  const blobPath = (repository: string, blobDigest: string) => `/v2/${repository}/blobs/${blobDigest}`;
  /** A blob GET with the blob-redirect header from an address outside MERIDIAN_TRUSTED_PROXIES: its status and body. */
  const fromUntrusted = (path: string) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const url = new URL(path, gateway.url);
      const request = http.get({ host: url.hostname, port: url.port, path, localAddress: '127.0.0.2', headers: { authorization: basic, [BLOB_REDIRECT_HEADER]: '1' } }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk)).on('end', () => resolve({ status: response.statusCode!, body: Buffer.concat(chunks) })).on('error', reject);
      });
      request.on('error', reject);
    });

  const push = async (repository: string, blob: Buffer) => {
    const response = await fetch(`${gateway.url}/v2/${repository}/blobs/uploads/?digest=${sha256(blob)}`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(blob),
    });
    expect(response.status).toBe(201);
  };
  /** A blob GET as the router sends it: the client's credentials, and the blob-redirect header. */
  const throughRouter = (path: string, headers: Record<string, string> = { authorization: basic }) =>
    fetch(`${gateway.url}${path}`, { headers: { ...headers, [BLOB_REDIRECT_HEADER]: '1' }, redirect: 'manual' });
  const status = async (path: string, method = 'GET') => {
    const response = await fetch(`${gateway.url}${path}`, { method, redirect: 'manual' });
    await response.body?.cancel();
    return { status: response.status, challenge: response.headers.get('www-authenticate') };
  };

  beforeAll(async () => {
    gateway = await startTestGateway({ MERIDIAN_AUTH: 'on', MERIDIAN_ADMIN_PASSWORD: ADMIN_PASSWORD, MERIDIAN_UPLOAD_SECRET: UPLOAD_SECRET, MERIDIAN_TRUSTED_PROXIES: '127.0.0.1' });
    await push('team/app', bytes);
    await push('team/app', other);
    await push('team/other', bytes);
  });
  afterAll(async () => {
    await gateway?.close();
  });

  it('answers the router\'s blob GET with 307 to a signed URL, not to be cached, that reads the blob (GET and HEAD) without credentials', async () => {
    const response = await throughRouter(`${blobPath('team/app', digest)}?ns=example`);
    expect(response.status).toBe(307);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const location = response.headers.get('location')!;
    const url = new URL(location, gateway.url);
    expect(url.pathname).toBe(blobPath('team/app', digest));
    expect(url.searchParams.get('ns')).toBe('example');
    expect(Number(url.searchParams.get('expires'))).toBeGreaterThan(Date.now() / 1000);

    const followed = await fetch(url);
    expect(followed.status).toBe(200);
    expect(Buffer.from(await followed.arrayBuffer()).equals(bytes)).toBe(true);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(digest);
  });

  it('serves the bytes to a blob GET without the header, and to one whose header comes from an untrusted address', async () => {
    const direct = await fetch(`${gateway.url}${blobPath('team/app', digest)}`, { headers: { authorization: basic }, redirect: 'manual' });
    expect(direct.status).toBe(200);
    expect(Buffer.from(await direct.arrayBuffer()).equals(bytes)).toBe(true);
    const claimed = await fromUntrusted(blobPath('team/app', digest));
    expect(claimed.status).toBe(200);
    expect(claimed.body.equals(bytes)).toBe(true);
  });

  it('checks credentials before it redirects: without them, the 401 challenge', async () => {
    const response = await throughRouter(blobPath('team/app', digest), {});
    await response.body?.cancel();
    expect(response.status).toBe(401);
    expect(response.headers.get('location')).toBeNull();
  });

  it('refuses with the usual 401 challenge a signature for another repository or digest, an expired, a tampered or a forged one', async () => {
    const response = await throughRouter(blobPath('team/app', digest));
    const signed = new URL(response.headers.get('location')!, gateway.url);
    const query = signed.searchParams;
    const refusals = [
      `${blobPath('team/other', digest)}?${query}`,
      `${blobPath('team/app', otherDigest)}?${query}`,
      `${blobPath('team/app', digest)}?expires=${Number(query.get('expires')) + 3600}&signature=${query.get('signature')}`,
      `${blobPath('team/app', digest)}?expires=${query.get('expires')}&signature=${query.get('signature')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`,
      `${blobPath('team/app', digest)}?expires=${query.get('expires')}&signature=not-a-signature`,
      `${blobPath('team/app', digest)}?signature=${query.get('signature')}`,
    ];
    // Signed by the region's own key, a minute and more ago: expired.
    const stale = new BlobUrlSigner(UPLOAD_SECRET).sign('team/app', digest, Date.now() - 120_000);
    refusals.push(`${blobPath('team/app', digest)}?expires=${stale.expires}&signature=${stale.signature}`);
    for (const path of refusals) {
      const refused = await status(path);
      expect({ path, ...refused }).toEqual({ path, status: 401, challenge: expect.stringContaining('scope="repository:') });
    }
    // The key is the region's: a URL signed now with the same secret reads the blob.
    const fresh = new BlobUrlSigner(UPLOAD_SECRET).sign('team/app', digest);
    expect((await status(`${blobPath('team/app', digest)}?expires=${fresh.expires}&signature=${fresh.signature}`)).status).toBe(200);
  });

  it('lets a signed URL read nothing but its blob: no delete, no manifest', async () => {
    const response = await throughRouter(blobPath('team/app', digest));
    const query = new URL(response.headers.get('location')!, gateway.url).search;
    expect((await status(`${blobPath('team/app', digest)}${query}`, 'DELETE')).status).toBe(401);
    expect((await status(`/v2/team/app/manifests/${digest}${query}`)).status).toBe(401);
  });
});

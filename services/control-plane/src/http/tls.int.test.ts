/**
 * The admin API over HTTPS (README, "TLS"): given MERIDIAN_TLS_CERT and MERIDIAN_TLS_KEY the
 * control plane serves its certificate, TLS 1.2 at least, to a client trusting the authority
 * this test makes; a client that does not trust it is refused by its own verification.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCertificates } from '@meridian/testkit';
import { startTestControlPlane, type TestControlPlane } from '../testing/test-control-plane.js';

let home: string;
let cp: TestControlPlane;
let ca: Buffer;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'meridian-cp-tls-'));
  const certificates = await createTestCertificates(home);
  ca = await readFile(certificates.caFile);
  cp = await startTestControlPlane({ MERIDIAN_TLS_CERT: certificates.certFile, MERIDIAN_TLS_KEY: certificates.keyFile });
});

afterAll(async () => {
  await cp?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

function get(pathname: string, options: https.RequestOptions): Promise<{ status: number; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    https
      .get(new URL(pathname, cp.url), { agent: false, ...options }, (response) => {
        const protocol = (response.socket as tls.TLSSocket).getProtocol();
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode!, protocol }));
      })
      .on('error', reject);
  });
}

describe('the admin API over HTTPS', () => {
  it('answers a client trusting the authority, over TLS 1.2 or newer', async () => {
    expect(cp.url).toMatch(/^https:\/\//);
    const answer = await get('/api/v1/regions', { ca });
    expect(answer.status).toBe(200);
    expect(['TLSv1.2', 'TLSv1.3']).toContain(answer.protocol);
  });

  it('is refused by a client that does not trust the authority, and refuses one offering at most TLS 1.1 (RFC 8996)', async () => {
    await expect(get('/healthz', {})).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    await expect(get('/healthz', { ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).rejects.toMatchObject({
      code: 'EPROTO',
      message: expect.stringMatching(/alert protocol version/),
    });
  });
});

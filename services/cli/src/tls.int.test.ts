/**
 * The `meridian` command against a control plane serving HTTPS with a private authority (README,
 * "TLS"): it trusts the authority given by --ca or MERIDIAN_TLS_CA besides the system's, and
 * without either it stops with one line naming both, not a bare "fetch failed".
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCertificates, type TestCertificates } from '@meridian/testkit';
import { startTestControlPlane, type TestControlPlane } from '@meridian/control-plane/testing';
import { runMeridian } from './run-meridian.js';

let cp: TestControlPlane;
let folder: string;
let certificates: TestCertificates;

beforeAll(async () => {
  folder = await mkdtemp(path.join(os.tmpdir(), 'meridian-cli-tls-'));
  certificates = await createTestCertificates(path.join(folder, 'tls'));
  cp = await startTestControlPlane({ MERIDIAN_TLS_CERT: certificates.certFile, MERIDIAN_TLS_KEY: certificates.keyFile });
});
afterAll(async () => {
  await cp?.close();
  if (folder) await rm(folder, { recursive: true, force: true });
});

function meridian(args: string[], env: Record<string, string> = {}) {
  const base: NodeJS.ProcessEnv = { ...process.env, INIT_CWD: folder, MERIDIAN_SERVER: cp.url };
  delete base.MERIDIAN_TLS_CA;
  return runMeridian(args, { ...base, ...env });
}

describe('meridian over HTTPS', () => {
  it('trusts the authority of --ca, or of MERIDIAN_TLS_CA', async () => {
    expect(cp.url).toMatch(/^https:\/\//);
    expect(await meridian(['--ca', certificates.caFile, '--json', 'region', 'list'])).toMatchObject({ code: 0, stdout: expect.stringContaining('"regions"') });
    expect(await meridian(['--json', 'region', 'list'], { MERIDIAN_TLS_CA: certificates.caFile })).toMatchObject({ code: 0, stdout: expect.stringContaining('"regions"') });
  });

  it('without the authority, refuses the server in one line naming --ca and MERIDIAN_TLS_CA', async () => {
    const run = await meridian(['region', 'list']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `meridian: ${new URL(cp.url).origin} presents a certificate that no trusted authority signed (UNABLE_TO_VERIFY_LEAF_SIGNATURE): set --ca FILE or MERIDIAN_TLS_CA to the PEM file of the authority that signed it\n`,
    );
  });

  it('names --ca when its file cannot be read', async () => {
    const missing = path.join(folder, 'absent.crt');
    expect(await meridian(['--ca', missing, 'region', 'list'])).toEqual({ code: 2, stdout: '', stderr: `meridian: --ca=${missing} cannot be read: ENOENT\n` });
  });
});

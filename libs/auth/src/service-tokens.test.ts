import { hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { AccessTokenIssuer, generateSigningKey } from './access-tokens.js';
import { ServiceTokenInvalidError, ServiceTokenIssuer, ServiceTokenVerifier } from './service-tokens.js';

const secret = 'a cluster secret of at least thirty-two characters';

// JWT claims as RFC 7519 section 4.1 defines them: sub names the caller, aud the callee.
describe('service tokens (RFC 7519 claims, HS256 under a key derived from the cluster secret)', () => {
  it('verify with the calling service, for the audience they were minted for', async () => {
    const token = await new ServiceTokenIssuer(secret, 'replication-worker').token('eu-west');
    expect(await new ServiceTokenVerifier(secret, 'eu-west').verify(token)).toEqual({ service: 'replication-worker' });
  });

  it('refuse a token for another region (aud)', async () => {
    const token = await new ServiceTokenIssuer(secret, 'replication-worker').token('us-east');
    await expect(new ServiceTokenVerifier(secret, 'eu-west').verify(token)).rejects.toThrow(/ERR_JWT_CLAIM_VALIDATION_FAILED/);
  });

  it('refuse a token minted under another cluster secret', async () => {
    const token = await new ServiceTokenIssuer(`${secret} but another`, 'control-plane').token('eu-west');
    await expect(new ServiceTokenVerifier(secret, 'eu-west').verify(token)).rejects.toThrow(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });

  it('refuse a token signed with the cluster secret itself rather than the derived key', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('meridian-cluster').setSubject('control-plane')
      .setAudience('eu-west').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    await expect(new ServiceTokenVerifier(secret, 'eu-west').verify(token)).rejects.toThrow(ServiceTokenInvalidError);
  });

  it('refuse an expired token, a tampered one, a missing one and a user access token', async () => {
    const verifier = new ServiceTokenVerifier(secret, 'eu-west');
    const expired = await new ServiceTokenIssuer(secret, 'gateway', 60).token('eu-west', Date.now() - 3600_000);
    await expect(verifier.verify(expired)).rejects.toThrow(/ERR_JWT_EXPIRED/);

    const [header, payload, signature] = (await new ServiceTokenIssuer(secret, 'gateway').token('eu-west')).split('.');
    const claims = { ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), sub: 'control-plane' };
    await expect(verifier.verify([header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.'))).rejects.toThrow(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);

    await expect(verifier.verify(undefined)).rejects.toThrow(ServiceTokenInvalidError);
    await expect(verifier.verify('')).rejects.toThrow(ServiceTokenInvalidError);

    const userToken = await (await AccessTokenIssuer.create(await generateSigningKey(), { issuer: 'meridian-cluster', service: 'eu-west' }, 300))
      .issue('control-plane', { access: [], catalog: [] });
    await expect(verifier.verify(userToken.token)).rejects.toThrow(/ERR_JOSE_ALG_NOT_ALLOWED/);
  });

  it('refuse a well-signed token naming no known service', async () => {
    const key = new Uint8Array(hkdfSync('sha256', secret, '', 'meridian service token v1', 32));
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('meridian-cluster').setSubject('someone')
      .setAudience('eu-west').setIssuedAt().setExpirationTime('5m').sign(key);
    await expect(new ServiceTokenVerifier(secret, 'eu-west').verify(token)).rejects.toThrow(/unknown service/);
  });

  it('reuse one token per audience for half its lifetime, then mint another', async () => {
    const issuer = new ServiceTokenIssuer(secret, 'control-plane', 300);
    const now = Date.now();
    const first = await issuer.token('eu-west', now);
    expect(await issuer.token('eu-west', now + 149_000)).toBe(first);
    expect(await issuer.token('us-east', now)).not.toBe(first);
    expect(await issuer.token('eu-west', now + 151_000)).not.toBe(first);
  });

  it('refuse a cluster secret shorter than 32 characters', () => {
    expect(() => new ServiceTokenIssuer('short', 'cli')).toThrow(/at least 32/);
    expect(() => new ServiceTokenVerifier('short', 'eu-west')).toThrow(/at least 32/);
  });
});

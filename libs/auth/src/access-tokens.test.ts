import { describe, expect, it, vi } from 'vitest';
import { SignJWT, importJWK, jwtVerify } from 'jose';
import { AccessTokenInvalidError, AccessTokenIssuer, AccessTokenVerifier, generateSigningKey } from './access-tokens.js';
import { generatePassword, hashPassword, verifyPassword } from './passwords.js';

// jose's own verification, watched (and run as it is) to count the signatures checked.
vi.mock('jose', async (importOriginal) => {
  const jose = await importOriginal<typeof import('jose')>();
  return { ...jose, jwtVerify: vi.fn(jose.jwtVerify) };
});
const signatureChecks = vi.mocked(jwtVerify);

const audience = { issuer: 'meridian:local', service: 'meridian' };
const grant = { access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }], catalog: ['team/*'] };

describe('access tokens (Docker token spec, "Token Authentication Implementation")', () => {
  it('verify with the issuer, audience, subject and access they were issued with', async () => {
    const key = await generateSigningKey();
    const issuer = await AccessTokenIssuer.create(key, audience, 300);
    const issued = await issuer.issue('ci-token', grant);
    expect(issued.expiresInSeconds).toBe(300);
    const verified = await new AccessTokenVerifier([key.publicJwk], audience).verify(issued.token);
    expect(verified).toEqual({ subject: 'ci-token', ...grant });
    // The public key holds no private part.
    expect(key.publicJwk.d).toBeUndefined();
  });

  it('refuse an expired token', async () => {
    const key = await generateSigningKey();
    const issuer = await AccessTokenIssuer.create(key, audience, 60);
    const issued = await issuer.issue('ci-token', grant, new Date(Date.now() - 3600_000));
    await expect(new AccessTokenVerifier([key.publicJwk], audience).verify(issued.token)).rejects.toThrow(AccessTokenInvalidError);
    await expect(new AccessTokenVerifier([key.publicJwk], audience).verify(issued.token)).rejects.toThrow(/ERR_JWT_EXPIRED/);
  });

  it('refuse a tampered token: its claims widened, the signature kept', async () => {
    const key = await generateSigningKey();
    const { token } = await (await AccessTokenIssuer.create(key, audience, 300)).issue('ci-token', grant);
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    claims.access[0].actions = ['pull', 'push', 'delete'];
    const tampered = [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
    await expect(new AccessTokenVerifier([key.publicJwk], audience).verify(tampered)).rejects.toThrow(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });

  it('refuse a token signed by another key under the same key id', async () => {
    const trusted = await generateSigningKey();
    const other = await generateSigningKey();
    const forger = await AccessTokenIssuer.create({ kid: trusted.kid, privateJwk: { ...other.privateJwk, kid: trusted.kid } }, audience, 300);
    const { token } = await forger.issue('admin', grant);
    await expect(new AccessTokenVerifier([trusted.publicJwk], audience).verify(token)).rejects.toThrow(AccessTokenInvalidError);
  });

  it('refuse a token for another service, from another issuer, or with no algorithm', async () => {
    const key = await generateSigningKey();
    const verifier = new AccessTokenVerifier([key.publicJwk], audience);
    const elsewhere = await (await AccessTokenIssuer.create(key, { ...audience, service: 'other-registry' }, 300)).issue('t', grant);
    await expect(verifier.verify(elsewhere.token)).rejects.toThrow(/ERR_JWT_CLAIM_VALIDATION_FAILED/);
    const otherIssuer = await (await AccessTokenIssuer.create(key, { ...audience, issuer: 'someone-else' }, 300)).issue('t', grant);
    await expect(verifier.verify(otherIssuer.token)).rejects.toThrow(/ERR_JWT_CLAIM_VALIDATION_FAILED/);
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', kid: key.kid })).toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: 'admin', iss: audience.issuer, aud: audience.service, exp: Math.floor(Date.now() / 1000) + 60, iat: 0, access: grant.access }),
    ).toString('base64url')}.`;
    await expect(verifier.verify(unsigned)).rejects.toThrow(AccessTokenInvalidError);
    await expect(verifier.verify('not a token')).rejects.toThrow(AccessTokenInvalidError);
  });

  it('refuse a token signed with a symmetric key made of the public key (algorithm confusion)', async () => {
    const key = await generateSigningKey();
    const secret = new TextEncoder().encode(JSON.stringify(key.publicJwk));
    const token = await new SignJWT({ access: grant.access })
      .setProtectedHeader({ alg: 'HS256', kid: key.kid })
      .setIssuer(audience.issuer).setAudience(audience.service).setSubject('admin').setIssuedAt().setExpirationTime('5m')
      .sign(secret);
    await expect(new AccessTokenVerifier([key.publicJwk], audience).verify(token)).rejects.toThrow(AccessTokenInvalidError);
    expect(await importJWK(key.publicJwk, 'ES256')).toBeDefined();
  });
});

describe('access token verification cache', () => {
  it('checks a token\'s signature once while the token lives, however often it is sent', async () => {
    const key = await generateSigningKey();
    const issued = await (await AccessTokenIssuer.create(key, audience, 300)).issue('ci-token', grant);
    const verifier = new AccessTokenVerifier([key.publicJwk], audience);
    signatureChecks.mockClear();
    const first = await verifier.verify(issued.token);
    for (let i = 0; i < 5; i += 1) expect(await verifier.verify(issued.token)).toEqual(first);
    expect(signatureChecks).toHaveBeenCalledTimes(1);
  });

  it('refuses a tampered token carrying the signature of one it remembers', async () => {
    const key = await generateSigningKey();
    const { token } = await (await AccessTokenIssuer.create(key, audience, 300)).issue('ci-token', grant);
    const verifier = new AccessTokenVerifier([key.publicJwk], audience);
    await verifier.verify(token);
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    claims.access[0].actions = ['pull', 'push', 'delete'];
    const tampered = [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
    await expect(verifier.verify(tampered)).rejects.toThrow(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
    expect((await verifier.verify(token)).access).toEqual(grant.access);
  });

  it('does not remember a refused token', async () => {
    const key = await generateSigningKey();
    const { token } = await (await AccessTokenIssuer.create(key, audience, 300)).issue('ci-token', grant);
    const tampered = `${token.slice(0, -4)}AAAA`;
    const verifier = new AccessTokenVerifier([key.publicJwk], audience);
    signatureChecks.mockClear();
    await expect(verifier.verify(tampered)).rejects.toThrow(AccessTokenInvalidError);
    await expect(verifier.verify(tampered)).rejects.toThrow(AccessTokenInvalidError);
    expect(signatureChecks).toHaveBeenCalledTimes(2);
  });

  it('remembers a token no longer than its exp: then it is refused as expired', async () => {
    const key = await generateSigningKey();
    // Lives one second: `exp` is a whole second, so at most one second from now.
    const issued = await (await AccessTokenIssuer.create(key, audience, 1)).issue('ci-token', grant);
    const exp = (issued.issuedAt.getTime() / 1000 + 1) * 1000;
    const verifier = new AccessTokenVerifier([key.publicJwk], audience, { clockToleranceSeconds: 0 });
    await verifier.verify(issued.token);
    while (Date.now() <= exp + 20) await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(verifier.verify(issued.token)).rejects.toThrow(/ERR_JWT_EXPIRED/);
  });

  it('is bounded: the least recently used token is verified afresh', async () => {
    const key = await generateSigningKey();
    const issuer = await AccessTokenIssuer.create(key, audience, 300);
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((subject) => issuer.issue(subject, grant)));
    const verifier = new AccessTokenVerifier([key.publicJwk], audience, { cachedTokens: 2 });
    for (const { token } of [a!, b!, c!]) await verifier.verify(token);
    signatureChecks.mockClear();
    await verifier.verify(c!.token);
    expect(signatureChecks).toHaveBeenCalledTimes(0);
    await verifier.verify(a!.token);
    expect(signatureChecks).toHaveBeenCalledTimes(1);
  });
});

describe('passwords (argon2id)', () => {
  it('hash with argon2id, verify the right password only, and survive a broken stored hash', async () => {
    const password = generatePassword();
    expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = await hashPassword(password);
    expect(stored.startsWith('$argon2id$')).toBe(true);
    expect(stored).not.toContain(password);
    expect(await verifyPassword(stored, password)).toBe(true);
    expect(await verifyPassword(stored, `${password}x`)).toBe(false);
    expect(await verifyPassword('not a hash', password)).toBe(false);
  });
});

import { generateKeyPairSync, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import argon2 from 'argon2';
import { hashPassword } from '../../src/accounts/passwords.js';

export interface Floors {
  /** One argon2id verify at our parameters (m=19456 KiB, t=2, p=1), one at a time. */
  argon2VerifyMs: number;
  /** Verifies per second with as many in flight as libuv's threadpool runs (all cores). */
  argon2VerifiesPerSecond: number;
  /** One JWS signature over a typical ID-token payload. */
  rs256SignMs: number;
  es256SignMs: number;
}

async function timeEach(count: number, work: () => unknown): Promise<number> {
  for (let i = 0; i < Math.min(5, count); i += 1) await work();
  const started = performance.now();
  for (let i = 0; i < count; i += 1) await work();
  return (performance.now() - started) / count;
}

/** The costs no implementation avoids: what a sign-in and a token response must at least spend. */
export async function measureFloors(): Promise<Floors> {
  const hash = await hashPassword('floor-password-123');
  const argon2VerifyMs = await timeEach(20, () => argon2.verify(hash, 'floor-password-123'));
  const parallel = 40;
  const started = performance.now();
  await Promise.all(Array.from({ length: parallel }, () => argon2.verify(hash, 'floor-password-123')));
  const argon2VerifiesPerSecond = parallel / ((performance.now() - started) / 1000);

  const payload = Buffer.from(
    `${Buffer.from('{"alg":"RS256","kid":"k"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ iss: 'http://127.0.0.1:3000', sub: 'x'.repeat(43), aud: 'client', exp: 2e9, iat: 1.7e9, nonce: 'n', at_hash: 'h' }),
    ).toString('base64url')}`,
  );
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const rs256SignMs = await timeEach(500, () => sign('sha256', payload, rsa));
  const es256SignMs = await timeEach(500, () => sign('sha256', payload, { key: ec, dsaEncoding: 'ieee-p1363' }));
  return { argon2VerifyMs, argon2VerifiesPerSecond, rs256SignMs, es256SignMs };
}

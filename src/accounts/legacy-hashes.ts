import { pbkdf2, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import argon2 from 'argon2';
import { runPasswordWork } from '../security/password-work.js';

/**
 * Password hashes brought from a service's own user store (idp accounts import), in the
 * notations their frameworks write, verified once at the person's first sign-in and then
 * replaced by our argon2id hash. Only salted hashes with a work factor are accepted: a fast
 * or unsalted digest (MD5, SHA-1, SHA-256 …) protects nothing, so such a row is imported
 * without a password and the person sets one by the reset flow.
 */
export type LegacyHashKind = 'bcrypt' | 'argon2' | 'scrypt' | 'pbkdf2-sha256' | 'pbkdf2-sha512';

export type LegacyHashVerdict = { accepted: true; kind: LegacyHashKind } | { accepted: false; weak: boolean; reason: string };

const pbkdf2Async = promisify(pbkdf2);
const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number, options: object) => Promise<Buffer>;

/** PHC strings use base64 without padding; passlib's variant writes '.' for '+'. */
const b64 = (value: string) => Buffer.from(value.replaceAll('.', '+'), 'base64');
const isB64 = (value: string) => /^[A-Za-z0-9+/.]+={0,2}$/.test(value);

const bcryptPattern = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;
// m, t and p in any order (node-argon2 writes m,p,t); argon2d is not a password hash.
const argon2Pattern = /^\$argon2(i|id)\$(?:v=\d+\$)?(?:[mtp]=\d+,){2}[mtp]=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
const scryptPattern = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([^$]+)\$([^$]+)$/;
// PHC ($pbkdf2-sha256$i=N$salt$hash) and passlib ($pbkdf2-sha256$N$salt$hash).
const phcPbkdf2Pattern = /^\$pbkdf2-(sha256|sha512)\$(?:i=)?(\d{1,8})(?:,l=\d+)?\$([^$]+)\$([^$]+)$/;
// Django: pbkdf2_sha256$iterations$salt$hash (salt as text, hash in base64).
const djangoPbkdf2Pattern = /^pbkdf2_(sha256|sha512)\$(\d{1,8})\$([^$]{1,200})\$([A-Za-z0-9+/]+={0,2})$/;
const weakPatterns: [RegExp, string][] = [
  [/^[0-9a-f]{32}$/i, 'an unsalted MD5 digest'],
  [/^[0-9a-f]{40}$/i, 'an unsalted SHA-1 digest'],
  [/^[0-9a-f]{64}$/i, 'an unsalted SHA-256 digest'],
  [/^[0-9a-f]{128}$/i, 'an unsalted SHA-512 digest'],
  [/^\{(?:MD5|SHA|SSHA|SHA256|SSHA256|SHA512|SSHA512|CRYPT)\}/i, 'an LDAP digest without a work factor'],
  [/^\$1\$/, 'MD5-crypt'],
  [/^(?:md5|sha1|unsalted_md5|unsalted_sha1)\$/, 'a Django hash without a work factor'],
];

/** The least work a hash must have taken to be worth keeping (well below today's defaults). */
const minimum = { bcryptCost: 8, scryptLogN: 14, pbkdf2Iterations: 10_000 } as const;
/** The most a sign-in may be made to spend on one (a row's parameters must not stall the server). */
const maximum = {
  bcryptCost: 16,
  argon2MemoryKiB: 1_048_576,
  argon2Time: 20,
  scryptLogN: 20,
  scryptR: 32,
  scryptP: 16,
  pbkdf2Iterations: 5_000_000,
} as const;
const tooCostly = (what: string): LegacyHashVerdict => ({
  accepted: false,
  weak: false,
  reason: `${what} is too costly to verify at sign-in`,
});

/** Which notation a stored hash is in, and whether we accept it as a password. */
export function classifyLegacyHash(hash: string): LegacyHashVerdict {
  const bcryptMatch = bcryptPattern.exec(hash);
  if (bcryptMatch) {
    const cost = bcryptMatch[1];
    if (Number(cost) > maximum.bcryptCost) return tooCostly(`bcrypt cost ${cost}`);
    return Number(cost) >= minimum.bcryptCost
      ? { accepted: true, kind: 'bcrypt' }
      : { accepted: false, weak: true, reason: `bcrypt cost ${cost} is below ${minimum.bcryptCost}` };
  }
  if (argon2Pattern.test(hash)) {
    const memory = Number(/[$,]m=(\d+)/.exec(hash)![1]);
    const time = Number(/[$,]t=(\d+)/.exec(hash)![1]);
    if (memory > maximum.argon2MemoryKiB || time > maximum.argon2Time) return tooCostly(`argon2 with m=${memory}, t=${time}`);
    return { accepted: true, kind: 'argon2' };
  }
  const scryptMatch = scryptPattern.exec(hash);
  if (scryptMatch) {
    const [, ln, r, p, salt, key] = scryptMatch;
    if (!isB64(salt!) || !isB64(key!)) return { accepted: false, weak: false, reason: 'scrypt salt or hash is not base64' };
    if (Number(ln) > maximum.scryptLogN || Number(r) > maximum.scryptR || Number(p) > maximum.scryptP || Number(r) < 1 || Number(p) < 1) {
      return tooCostly(`scrypt with ln=${ln}, r=${r}, p=${p}`);
    }
    return Number(ln) >= minimum.scryptLogN
      ? { accepted: true, kind: 'scrypt' }
      : { accepted: false, weak: true, reason: `scrypt ln=${ln} is below ${minimum.scryptLogN}` };
  }
  const pbkdf2Match = phcPbkdf2Pattern.exec(hash) ?? djangoPbkdf2Pattern.exec(hash);
  if (pbkdf2Match) {
    const [, digest, iterations, salt, key] = pbkdf2Match;
    if (!isB64(key!) || (hash.startsWith('$') && !isB64(salt!)))
      return { accepted: false, weak: false, reason: 'PBKDF2 salt or hash is not base64' };
    return Number(iterations) >= minimum.pbkdf2Iterations
      ? { accepted: true, kind: `pbkdf2-${digest as 'sha256' | 'sha512'}` }
      : { accepted: false, weak: true, reason: `PBKDF2 with ${iterations} iterations is below ${minimum.pbkdf2Iterations}` };
  }
  for (const [pattern, what] of weakPatterns) {
    if (pattern.test(hash)) return { accepted: false, weak: true, reason: `${what} is not safe to keep as a password` };
  }
  return { accepted: false, weak: false, reason: 'unknown password_hash notation (bcrypt, argon2, scrypt or PBKDF2 expected)' };
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

async function verifyScrypt(hash: string, password: string): Promise<boolean> {
  const [, ln, r, p, salt, key] = scryptPattern.exec(hash)!;
  const [N, blockSize] = [2 ** Number(ln), Number(r)];
  const expected = b64(key!);
  const derived = await scryptAsync(password, b64(salt!), expected.length, {
    N,
    r: blockSize,
    p: Number(p),
    maxmem: 256 * N * blockSize,
  });
  return sameBytes(derived, expected);
}

async function verifyPbkdf2(hash: string, password: string): Promise<boolean> {
  const django = djangoPbkdf2Pattern.exec(hash);
  const [, digest, iterations, salt, key] = django ?? phcPbkdf2Pattern.exec(hash)!;
  const expected = b64(key!);
  // Django's salt is the text itself; PHC and passlib's are base64 of the salt bytes.
  const saltBytes = django ? Buffer.from(salt!, 'utf8') : b64(salt!);
  return sameBytes(await pbkdf2Async(password, saltBytes, Number(iterations), expected.length, digest!), expected);
}

/**
 * Checks a password against an imported hash with that hash's own algorithm, in the
 * process's password-work queue like every other verification. The password is used as
 * typed: the service that made the hash did not normalise it.
 */
export function verifyLegacyHash(hash: string, password: string): Promise<boolean> {
  const verdict = classifyLegacyHash(hash);
  if (!verdict.accepted) return Promise.resolve(false);
  return runPasswordWork(async () => {
    try {
      switch (verdict.kind) {
        case 'bcrypt':
          // $2a$, $2b$ and $2y$ are one algorithm; the library reads all three.
          return await bcrypt.compare(password, hash);
        case 'argon2':
          return await argon2.verify(hash, password);
        case 'scrypt':
          return await verifyScrypt(hash, password);
        default:
          return await verifyPbkdf2(hash, password);
      }
    } catch {
      return false;
    }
  });
}

import { pbkdf2Sync, randomBytes, scryptSync } from 'node:crypto';
import bcrypt from 'bcryptjs';
import argon2 from 'argon2';

/**
 * Password hashes as other frameworks write them, made with the real primitives: bcrypt by
 * bcryptjs, argon2 by node-argon2, scrypt and PBKDF2 by node:crypto in the notations
 * of PHC strings, passlib and Django.
 */
const phc = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');
const passlib = (bytes: Buffer) => phc(bytes).replaceAll('+', '.');

export async function legacyHashes(password: string): Promise<Record<string, string>> {
  const bcrypt10 = bcrypt.hashSync(password, 10);
  const salt = randomBytes(16);
  return {
    'bcrypt $2b$ cost 10': bcrypt10,
    'bcrypt $2b$ cost 12': bcrypt.hashSync(password, 12),
    // PHP's $2y$ and the older $2a$ are the same algorithm under another prefix.
    'bcrypt $2a$': bcrypt10.replace(/^\$2b\$/, '$2a$'),
    'bcrypt $2y$': bcrypt10.replace(/^\$2b\$/, '$2y$'),
    argon2i: await argon2.hash(password, { type: argon2.argon2i }),
    argon2id: await argon2.hash(password, { type: argon2.argon2id, memoryCost: 8192, timeCost: 3 }),
    scrypt: `$scrypt$ln=14,r=8,p=1$${phc(salt)}$${phc(scryptSync(password, salt, 32, { N: 2 ** 14, r: 8, p: 1 }))}`,
    'pbkdf2-sha256 (PHC)': `$pbkdf2-sha256$i=100000$${phc(salt)}$${phc(pbkdf2Sync(password, salt, 100_000, 32, 'sha256'))}`,
    'pbkdf2-sha512 (PHC)': `$pbkdf2-sha512$i=100000$${phc(salt)}$${phc(pbkdf2Sync(password, salt, 100_000, 64, 'sha512'))}`,
    'pbkdf2-sha256 (passlib)': `$pbkdf2-sha256$29000$${passlib(salt)}$${passlib(pbkdf2Sync(password, salt, 29_000, 32, 'sha256'))}`,
    'pbkdf2_sha256 (Django)': `pbkdf2_sha256$260000$${'Qx7sKp2mV9aLr4Tz'}$${pbkdf2Sync(password, 'Qx7sKp2mV9aLr4Tz', 260_000, 32, 'sha256').toString('base64')}`,
  };
}

import { dictionary } from '@zxcvbn-ts/language-common';
import argon2 from 'argon2';
import { z } from 'zod';
import { runPasswordWork } from '../security/password-work.js';

// The most common passwords from real breaches (zxcvbn-ts's list, ~49k entries), as NIST
// SP 800-63B §5.1.1.2 asks: refuse passwords that attackers try first.
const commonPasswords = new Set(dictionary['passwords-common'].map((password) => password.toLowerCase()));

export function isCommonPassword(password: string): boolean {
  return commonPasswords.has(password.toLowerCase());
}

/** OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1. */
export const passwordHashOptions = {
  type: argon2.argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

/** NIST SP 800-63B: length is what matters; any Unicode; no composition rules. */
export const passwordSchema = z
  .string({ message: 'Enter a password.' })
  .min(8, 'Use at least 8 characters for your password.')
  .max(256, 'Use at most 256 characters for your password.')
  .refine((password) => !isCommonPassword(password), 'This password is one of the most common ones. Choose something less predictable.');

/** Every argon2 call waits its turn in the process's bounded queue (security/password-work.ts). */
export function hashPassword(password: string): Promise<string> {
  return runPasswordWork(() => argon2.hash(password.normalize('NFKC'), passwordHashOptions));
}

export function verifyPassword(hash: string, password: string): Promise<boolean> {
  return runPasswordWork(async () => {
    try {
      return await argon2.verify(hash, password.normalize('NFKC'));
    } catch {
      return false;
    }
  });
}

export function passwordNeedsRehash(hash: string): boolean {
  return argon2.needsRehash(hash, passwordHashOptions);
}

let dummyHash: Promise<string> | undefined;

/**
 * A hash of a random password with the current parameters. Verifying against it when an
 * email is unknown makes that answer take as long as a wrong password for a real account.
 */
export function dummyPasswordHash(): Promise<string> {
  // Outside the queue: made once per process, and a rejected first call must not be remembered.
  dummyHash ??= argon2.hash(crypto.randomUUID(), passwordHashOptions);
  return dummyHash;
}

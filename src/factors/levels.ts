/**
 * Authentication levels (the `acr` a service may ask for and the ID token reports) and the
 * methods behind them (the `amr`, RFC 8176 values). Each level satisfies the ones below it.
 */
export const acrLevels = {
  /** One factor: a password. */
  oneFactor: 'urn:group-idp:acr:1fa',
  /** Two factors: a password and an authenticator-app code, a recovery code or a passkey; or a passkey with user verification. */
  twoFactors: 'urn:group-idp:acr:2fa',
  /** Phishing-resistant (OpenID EAP ACR values): a passkey was used. */
  phishingResistant: 'phr',
} as const;

export type AcrLevel = (typeof acrLevels)[keyof typeof acrLevels];

/** Weakest first: discovery's acr_values_supported, and the order levels satisfy each other in. */
export const acrValuesSupported: readonly AcrLevel[] = [acrLevels.oneFactor, acrLevels.twoFactors, acrLevels.phishingResistant];

const rank = (level: string) => acrValuesSupported.indexOf(level as AcrLevel);

export function isAcrLevel(value: unknown): value is AcrLevel {
  return typeof value === 'string' && rank(value) >= 0;
}

/** Whether a sign-in at `achieved` meets `required`. */
export function satisfies(achieved: string | undefined, required: AcrLevel): boolean {
  return achieved !== undefined && rank(achieved) >= rank(required);
}

/** The strongest of these levels (undefined for none). */
export function strongest(levels: readonly AcrLevel[]): AcrLevel | undefined {
  return [...levels].sort((a, b) => rank(b) - rank(a))[0];
}

/** The weakest of these levels: what a list of acceptable levels asks at least. */
export function weakest(levels: readonly AcrLevel[]): AcrLevel | undefined {
  return [...levels].sort((a, b) => rank(a) - rank(b))[0];
}

/** RFC 8176 method values. `hwk` for a device-bound passkey, `swk` for a synced one. */
export type AuthenticationMethod = 'pwd' | 'otp' | 'hwk' | 'swk' | 'mfa';

/**
 * The level a sign-in reached from the methods it used. A passkey is phishing-resistant and,
 * with user verification (always required here), two factors in itself: the device and the
 * person's PIN or biometric on it.
 */
export function levelOf(amr: readonly string[]): AcrLevel {
  if (amr.includes('hwk') || amr.includes('swk')) return acrLevels.phishingResistant;
  if (amr.includes('mfa')) return acrLevels.twoFactors;
  return acrLevels.oneFactor;
}

/** The methods of a sign-in, with `mfa` when two factors were used. */
export function methodsOf(used: readonly AuthenticationMethod[]): AuthenticationMethod[] {
  const methods = [...new Set(used.filter((method) => method !== 'mfa'))];
  const passkey = methods.includes('hwk') || methods.includes('swk');
  return methods.length >= 2 || passkey ? [...methods, 'mfa'] : methods;
}

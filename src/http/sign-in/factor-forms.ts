import type { Context } from 'koa';
import QRCode from 'qrcode';
import { z } from 'zod';
import type { Account } from '../../accounts/store.js';
import type { PlainKey } from '../../i18n/catalogue.js';
import { describeUserAgent } from '../../security/user-agent.js';
import { passkeyCreationOptions } from '../../use-cases/enroll-factor.js';
import { passkeysOffered } from '../../use-cases/factor-context.js';
import type { PasskeyRefusal } from '../../use-cases/second-step.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';

/** What pages that add or use a factor share: reading WebAuthn answers, naming passkeys, the QR code. */

export const passkeyRefusalMessages: Record<PasskeyRefusal | 'malformed' | 'disabled', PlainKey> = {
  disabled: 'login.error.disabled',
  invalid: 'passkey.error.invalid',
  expired: 'passkey.error.expired',
  replayed: 'passkey.error.replayed',
  malformed: 'passkey.error.malformed',
};

/** Reads a posted WebAuthn response: JSON of the expected shape, or undefined. */
export function parseCredential<T>(schema: z.ZodType<T>, text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** A passkey's name as people give it: trimmed, at most 60 characters, no control characters. */
export const passkeyNameSchema = z
  .string()
  .transform((name) => name.replace(/\p{Cc}/gu, '').trim())
  .pipe(z.string().min(1).max(60));

/** A name for a new passkey when the person gave none: the browser and system it was made on. */
export function defaultPasskeyName(ctx: Context): string {
  const { browser, os } = describeUserAgent(ctx.get('user-agent') || undefined);
  const t = pageTranslator(ctx);
  return browser === 'unknown' ? t('passkey.defaultName') : t('activity.deviceValue', { browser, os: os === 'unknown' ? '?' : os });
}

/** The QR code of an otpauth:// URI, as inline SVG (no script, no request of its own). */
export function qrCodeSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

/** What a page needs to offer adding a passkey (none when passkeys are off). */
export async function passkeyCreationJson(deps: SelfServiceDeps, account: Account): Promise<string | undefined> {
  if (!passkeysOffered(deps)) return undefined;
  return JSON.stringify(await passkeyCreationOptions(deps, account));
}

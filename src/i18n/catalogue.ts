import { en } from './en.js';
import { ja } from './ja.js';

export const languages = ['en', 'ja'] as const;
export type Language = (typeof languages)[number];
export const defaultLanguage: Language = 'en';

export type MessageKey = keyof typeof en;
/** What every language must provide: exactly the English keys. */
export type Messages = Readonly<Record<MessageKey, string>>;

/** The `{name}` placeholders of a message, from the English text. */
type Placeholders<S extends string> = S extends `${string}{${infer Name}}${infer Rest}` ? Name | Placeholders<Rest> : never;
type ParamsFor<K extends MessageKey> = [Placeholders<(typeof en)[K]>] extends [never]
  ? []
  : [Record<Placeholders<(typeof en)[K]>, string | number>];

/** Keys of messages without placeholders: page titles, headings, keys carried by errors. */
export type PlainKey = { [K in MessageKey]: [Placeholders<(typeof en)[K]>] extends [never] ? K : never }[MessageKey];

/** Looks up a message in one language; the compiler checks the key and the values it needs. */
export type Translate = <K extends MessageKey>(key: K, ...params: ParamsFor<K>) => string;

const catalogues: Record<Language, Messages> = { en, ja };

export function isLanguage(value: unknown): value is Language {
  return typeof value === 'string' && (languages as readonly string[]).includes(value);
}

/** The supported language of a BCP 47 tag (`ja-JP` → `ja`), by its primary subtag. */
export function languageOfTag(tag: string | null | undefined): Language | undefined {
  const primary = tag?.trim().split(/[-_]/)[0]?.toLowerCase();
  return isLanguage(primary) ? primary : undefined;
}

export function translator(language: Language): Translate {
  const messages = catalogues[language];
  return ((key: MessageKey, params?: Record<string, string | number>) =>
    messages[key].replace(/\{(\w+)\}/g, (placeholder, name: string) =>
      params && params[name] !== undefined ? String(params[name]) : placeholder,
    )) as Translate;
}

/** Every message of a language, for tests that compare catalogues. */
export function messagesOf(language: Language): Messages {
  return catalogues[language];
}

const dateLocales: Record<Language, string> = { en: 'en-GB', ja: 'ja-JP' };

/** A date and time people read, in the reader's time zone (i18n/time-zones.ts), named after it. */
export function formatDateTime(language: Language, date: Date, timeZone = 'UTC'): string {
  const formatted = new Intl.DateTimeFormat(dateLocales[language], { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(date);
  const zone = new Intl.DateTimeFormat(dateLocales[language], { timeZone, timeZoneName: 'short' })
    .formatToParts(date)
    .find((part) => part.type === 'timeZoneName')?.value;
  return `${formatted} ${zone ?? timeZone}`;
}

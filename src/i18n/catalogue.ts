import { de } from './de.js';
import { en } from './en.js';
import { es } from './es.js';
import { fr } from './fr.js';
import { ja } from './ja.js';
import { ko } from './ko.js';
import { zhHant } from './zh-Hant.js';

/** BCP 47 tags, as pages (`lang`), the `locale` claim and `ui_locales` name them. */
export const languages = ['en', 'ja', 'zh-Hant', 'ko', 'fr', 'de', 'es'] as const;
export type Language = (typeof languages)[number];
export const defaultLanguage: Language = 'en';

/** Each language in its own name, as the switcher and the profile page list it. */
export const languageNames: Readonly<Record<Language, string>> = {
  en: 'English',
  ja: '日本語',
  'zh-Hant': '繁體中文',
  ko: '한국어',
  fr: 'Français',
  de: 'Deutsch',
  es: 'Español',
};

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

const catalogues: Record<Language, Messages> = { en, ja, 'zh-Hant': zhHant, ko, fr, de, es };

export function isLanguage(value: unknown): value is Language {
  return typeof value === 'string' && (languages as readonly string[]).includes(value);
}

/** Chinese regions that write in traditional characters, when a tag names no script. */
const traditionalChineseRegions = new Set(['tw', 'hk', 'mo']);

/**
 * The supported language of a BCP 47 tag, by its primary subtag (`ja-JP` → `ja`,
 * `fr-CA` → `fr`). Chinese goes by script: `zh-Hant`, `zh-TW`, `zh-HK` and `zh-MO` are
 * Traditional Chinese; `zh`, `zh-CN` and `zh-Hans` (Simplified, which we do not offer) are not.
 */
export function languageOfTag(tag: string | null | undefined): Language | undefined {
  const [primary, ...rest] = (tag ?? '').trim().toLowerCase().split(/[-_]/);
  if (primary === 'zh') {
    const script = rest.find((subtag) => subtag.length === 4);
    const region = rest.find((subtag) => subtag.length === 2);
    if (script === 'hant' || (!script && region && traditionalChineseRegions.has(region))) return 'zh-Hant';
    return undefined;
  }
  return isLanguage(primary) ? primary : undefined;
}

/**
 * The languages of an Accept-Language header, most preferred first (RFC 9110 §12.5.4):
 * by quality, then by order; `q=0` excludes a tag; `*` and unsupported tags are skipped.
 */
export function acceptedLanguages(header: string | undefined): Language[] {
  if (!header) return [];
  const ranges = header
    .split(',')
    .slice(0, 50)
    .map((range, index) => {
      const [tag = '', ...parameters] = range.split(';').map((part) => part.trim());
      const quality = parameters.find((parameter) => /^q=/i.test(parameter));
      const q = quality === undefined ? 1 : Number(quality.slice(2));
      return { tag, q: Number.isFinite(q) ? q : 0, index };
    })
    .filter((range) => range.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  const found: Language[] = [];
  for (const { tag } of ranges) {
    const language = languageOfTag(tag);
    if (language && !found.includes(language)) found.push(language);
  }
  return found;
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

/** The Intl locale dates are written in, per language. */
export const dateLocales: Readonly<Record<Language, string>> = {
  en: 'en-GB',
  ja: 'ja-JP',
  'zh-Hant': 'zh-Hant-TW',
  // A 24-hour clock: this runtime's Korean data writes the Latin "PM" for 오후.
  ko: 'ko-KR-u-hc-h23',
  fr: 'fr-FR',
  de: 'de-DE',
  es: 'es-ES',
};

/** A date and time people read, in the reader's time zone (i18n/time-zones.ts), named after it. */
export function formatDateTime(language: Language, date: Date, timeZone = 'UTC'): string {
  const formatted = new Intl.DateTimeFormat(dateLocales[language], { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(date);
  const zone = new Intl.DateTimeFormat(dateLocales[language], { timeZone, timeZoneName: 'short' })
    .formatToParts(date)
    .find((part) => part.type === 'timeZoneName')?.value;
  return `${formatted} ${zone ?? timeZone}`;
}

import { dateLocales, type Language } from './catalogue.js';

/** Every IANA time zone this runtime knows, plus UTC (which Intl lists under Etc/UTC only). */
export const timeZones: readonly string[] = ['UTC', ...Intl.supportedValuesOf('timeZone').filter((zone) => zone !== 'UTC')];
const known = new Set(timeZones);

export const isTimeZone = (value: string): boolean => known.has(value);

const labels = new Map<Language, { value: string; label: string }[]>();

/** Each zone as the profile page offers it: its IANA name and what the language calls it. */
export function timeZoneChoices(language: Language): { value: string; label: string }[] {
  let choices = labels.get(language);
  if (!choices) {
    const now = new Date();
    choices = timeZones.map((zone) => {
      const name = new Intl.DateTimeFormat(dateLocales[language], { timeZone: zone, timeZoneName: 'longGeneric' })
        .formatToParts(now)
        .find((part) => part.type === 'timeZoneName')?.value;
      const id = zone.replaceAll('_', ' ');
      return { value: zone, label: name && name !== zone ? `${id} — ${name}` : id };
    });
    labels.set(language, choices);
  }
  return choices;
}

/** Where a language's people mostly are, when they have not chosen a zone themselves. */
const defaults: Partial<Record<Language, string>> = {
  ja: 'Asia/Tokyo',
  'zh-Hant': 'Asia/Taipei',
  ko: 'Asia/Seoul',
  fr: 'Europe/Paris',
  de: 'Europe/Berlin',
  es: 'Europe/Madrid',
};

export function defaultTimeZone(language: Language): string {
  return defaults[language] ?? 'UTC';
}

/** The zone dates are shown in for a person: theirs, else their language's. */
export function timeZoneFor(person: { zoneinfo?: string | null } | undefined, language: Language): string {
  return person?.zoneinfo && isTimeZone(person.zoneinfo) ? person.zoneinfo : defaultTimeZone(language);
}

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultTimeZone, timeZoneFor } from '../../src/i18n/time-zones.js';
import {
  acceptedLanguages,
  formatDateTime,
  languageNames,
  languageOfTag,
  languages,
  messagesOf,
  translator,
} from '../../src/i18n/catalogue.js';
import { safeReturnPath } from '../../src/http/language.js';
import { viewsDirectory } from '../../src/http/render.js';
import { describeUserAgent } from '../../src/security/user-agent.js';

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort();

function templates(directory = viewsDirectory): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? templates(join(directory, entry.name)) : entry.name.endsWith('.eta') ? [join(directory, entry.name)] : [],
  );
}

describe('message catalogues', () => {
  it('give every language the same keys and, for each, the same placeholders, with no empty text', () => {
    const english = messagesOf('en');
    for (const language of languages) {
      const messages = messagesOf(language);
      expect(Object.keys(messages).sort()).toEqual(Object.keys(english).sort());
      for (const [key, text] of Object.entries(messages)) {
        expect(text.trim(), `${language} ${key}`).not.toBe('');
        expect(placeholders(text), `${language} ${key}`).toEqual(placeholders(english[key as keyof typeof english]));
      }
    }
  });

  it('fill in placeholders', () => {
    expect(translator('en')('login.lead', { service: 'Travel' })).toBe('to continue to Travel');
    expect(translator('ja')('login.lead', { service: 'Travel' })).toBe('Travel を続けるにはログインしてください');
  });

  it('keep every word out of the templates: outside tags and template code there is no text', () => {
    expect(templates().length).toBeGreaterThan(15);
    for (const file of templates()) {
      const text = readFileSync(file, 'utf8')
        .replace(/<%[\s\S]*?%>/g, '')
        .replace(/<[^>]*>/g, '')
        .trim();
      expect(text, file).toBe('');
    }
  });

  it('offers seven languages, each named in itself', () => {
    expect([...languages]).toEqual(['en', 'ja', 'zh-Hant', 'ko', 'fr', 'de', 'es']);
    expect(Object.values(languageNames)).toEqual(['English', '日本語', '繁體中文', '한국어', 'Français', 'Deutsch', 'Español']);
  });

  it('translates rather than copies: most messages of every language differ from the English', () => {
    const english = messagesOf('en');
    for (const language of languages.filter((code) => code !== 'en')) {
      const same = Object.entries(messagesOf(language)).filter(([key, text]) => text === english[key as keyof typeof english]);
      // Only brand-like text may stay: the brand, the title pattern, the signature, separators, route labels, etc.
      expect(same.length, `${language}: ${same.map(([key]) => key).join(' ')}`).toBeLessThan(15);
    }
  });

  it('maps language tags to supported languages by their primary subtag, and Chinese by its script', () => {
    expect(languageOfTag('ja-JP')).toBe('ja');
    expect(languageOfTag('EN_gb')).toBe('en');
    expect(languageOfTag('fr-CA')).toBe('fr');
    expect(languageOfTag('de-AT')).toBe('de');
    expect(languageOfTag('es-419')).toBe('es');
    expect(languageOfTag('ko-KR')).toBe('ko');
    for (const tag of ['zh-Hant', 'zh-Hant-TW', 'zh-TW', 'zh-HK', 'zh-MO', 'ZH_tw']) expect(languageOfTag(tag), tag).toBe('zh-Hant');
    for (const tag of ['zh', 'zh-CN', 'zh-Hans', 'zh-Hans-HK', 'zh-SG']) expect(languageOfTag(tag), tag).toBeUndefined();
    expect(languageOfTag('pt-BR')).toBeUndefined();
    expect(languageOfTag(null)).toBeUndefined();
  });

  it('reads Accept-Language by quality, then by order, skipping what we do not offer', () => {
    expect(acceptedLanguages('de;q=0.3, fr;q=0.9, en;q=0.5')).toEqual(['fr', 'en', 'de']);
    expect(acceptedLanguages('zh-CN, zh;q=0.9, zh-TW;q=0.8, ko;q=0.7')).toEqual(['zh-Hant', 'ko']);
    expect(acceptedLanguages('pt-BR, es-MX;q=0.8, es;q=0.7, *;q=0.1')).toEqual(['es']);
    expect(acceptedLanguages('ja;q=0, en')).toEqual(['en']);
    expect(acceptedLanguages('fr;q=abc, ko')).toEqual(['ko']);
    expect(acceptedLanguages(undefined)).toEqual([]);
  });

  it('formats dates for each language, in UTC', () => {
    const date = new Date(Date.UTC(2025, 0, 31, 13, 5));
    expect(formatDateTime('en', date)).toBe('31 Jan 2025, 13:05 UTC');
    expect(formatDateTime('ja', date)).toBe('2025/01/31 13:05 UTC');
    for (const language of languages) expect(formatDateTime(language, date), language).toMatch(/2025/);
    expect(formatDateTime('de', date)).toBe('31.01.2025, 13:05 UTC');
  });

  it('formats dates in a time zone, named after it; Japanese defaults to Tokyo', () => {
    const date = new Date(Date.UTC(2025, 0, 31, 13, 5));
    expect(formatDateTime('ja', date, 'Asia/Tokyo')).toBe('2025/01/31 22:05 JST');
    expect(formatDateTime('en', date, 'Europe/Paris')).toBe('31 Jan 2025, 14:05 CET');
    expect(timeZoneFor({ zoneinfo: null }, 'ja')).toBe('Asia/Tokyo');
    expect([defaultTimeZone('zh-Hant'), defaultTimeZone('ko'), defaultTimeZone('fr')]).toEqual([
      'Asia/Taipei',
      'Asia/Seoul',
      'Europe/Paris',
    ]);
    expect(formatDateTime('ko', date, 'Asia/Seoul')).toBe('2025. 1. 31. 22:05 GMT+9');
    expect(timeZoneFor(undefined, 'en')).toBe('UTC');
    expect(timeZoneFor({ zoneinfo: 'America/New_York' }, 'ja')).toBe('America/New_York');
    expect(timeZoneFor({ zoneinfo: 'Nowhere/Else' }, 'en')).toBe('UTC');
  });
});

describe('return paths', () => {
  it('accept only paths on this site', () => {
    expect(safeReturnPath('/account?x=1')).toBe('/account?x=1');
    for (const bad of ['https://evil.example', '//evil.example', '/\\evil.example', 'account', '/a\nb', '', 42, undefined]) {
      expect(safeReturnPath(bad), String(bad)).toBeUndefined();
    }
  });
});

describe('user agents', () => {
  it('are reduced to browser family and system', () => {
    const cases: [string, string, string][] = [
      ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Chrome', 'Linux'],
      [
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0',
        'Edge',
        'Windows',
      ],
      [
        'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
        'Safari',
        'iOS',
      ],
      ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox', 'macOS'],
      [
        'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0 Mobile Safari/537.36',
        'Samsung Internet',
        'Android',
      ],
      ['curl/8.5.0', 'unknown', 'unknown'],
    ];
    for (const [userAgent, browser, os] of cases) expect(describeUserAgent(userAgent)).toEqual({ browser, os });
    expect(describeUserAgent(undefined)).toEqual({ browser: 'unknown', os: 'unknown' });
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestAccount, createTestClient, uniqueEmail } from '../helpers/fixtures.js';
import { discoverClient, startAuthorization } from '../helpers/oidc-client.js';
import { connectService, latestMail, signInToAccountPages } from '../helpers/self-service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { formActions, hiddenField, UserAgent, type PageResponse } from '../helpers/user-agent.js';
import type { RegisteredClient } from '../../src/clients/store.js';
import { languageNames, languages, messagesOf, type Language } from '../../src/i18n/catalogue.js';

let server: TestServer;
let service: RegisteredClient;
const redirectUri = 'http://127.0.0.1:9901/cb';

beforeAll(async () => {
  server = await startTestServer();
  service = await createTestClient(server.db, server.validator, { redirectUris: [redirectUri], name: 'Travel' });
});
afterAll(async () => {
  await server?.close();
});

async function loginPage(agent: UserAgent, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
  const config = await discoverClient(server.issuer, service.client.clientId, service.clientSecret);
  const { url } = await startAuthorization(config, redirectUri, 'openid email');
  for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
  let page = await agent.request(url.href, { headers });
  while (page.location && !page.location.startsWith(redirectUri)) page = await agent.request(page.location, { headers });
  return page;
}

const languageOf = (page: PageResponse) => /<html lang="([\w-]+)">/.exec(page.body)?.[1];

/** Visible text of a page: what a person reads. */
const visibleText = (page: PageResponse) =>
  page.body
    .replace(/<head>[\s\S]*<\/head>/, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ');

describe('page language', () => {
  it('follows Accept-Language when nothing else says', async () => {
    const ja = await loginPage(new UserAgent(), {}, { 'accept-language': 'ja-JP,ja;q=0.9,en;q=0.5' });
    expect(languageOf(ja)).toBe('ja');
    expect(ja.headers.get('content-language')).toBe('ja');
    expect(ja.body).toContain('<h1>ログイン</h1>');
    expect(ja.body).toContain('Travel を続けるにはログインしてください');
    const en = await loginPage(new UserAgent(), {}, { 'accept-language': 'pt-BR, en;q=0.5' });
    expect(languageOf(en)).toBe('en');
    expect(languageOf(await loginPage(new UserAgent(), {}, { 'accept-language': 'pt' }))).toBe('en');
    const byQuality = await loginPage(new UserAgent(), {}, { 'accept-language': 'de;q=0.4, fr-CA;q=0.8, en;q=0.6' });
    expect(languageOf(byQuality)).toBe('fr');
    expect(byQuality.headers.get('content-language')).toBe('fr');
    expect(byQuality.body).toContain('pour continuer vers Travel');
    const taiwan = await loginPage(new UserAgent(), {}, { 'accept-language': 'zh-TW,zh;q=0.9' });
    expect(languageOf(taiwan)).toBe('zh-Hant');
    expect(taiwan.body).toContain('以繼續使用 Travel');
    // Simplified Chinese is not offered: the next language the browser accepts is used.
    expect(languageOf(await loginPage(new UserAgent(), {}, { 'accept-language': 'zh-CN, ko;q=0.5' }))).toBe('ko');
  });

  it('prefers the service’s ui_locales over Accept-Language', async () => {
    const page = await loginPage(new UserAgent(), { ui_locales: 'pt-BR ja-JP en' }, { 'accept-language': 'en' });
    expect(languageOf(page)).toBe('ja');
    expect(languageOf(await loginPage(new UserAgent(), { ui_locales: 'zh-HK' }, { 'accept-language': 'de' }))).toBe('zh-Hant');
    expect(languageOf(await loginPage(new UserAgent(), { ui_locales: 'es-MX de' }, { 'accept-language': 'ko' }))).toBe('es');
  });

  it('uses the account’s locale once the person is known, unless ui_locales says otherwise', async () => {
    const account = await createTestAccount(server.db, { locale: 'ja-JP' });
    const agent = new UserAgent();
    const login = await loginPage(agent, {}, { 'accept-language': 'en' });
    const action = formActions(login.body).find((candidate) => candidate.endsWith('/login'))!;
    const consent = await agent.follow(`${server.issuer}${action}`, redirectUri, {
      form: { _csrf: hiddenField(login.body, '_csrf'), email: account.email, password: account.password },
      headers: { 'accept-language': 'en' },
    });
    if ('stoppedAt' in consent) throw new Error('expected the consent page');
    expect(languageOf(consent)).toBe('ja');
    expect(consent.body).toContain('許可する');
    expect(consent.body).toContain('メールアドレスと、それが確認済みかどうか');

    const hinted = await loginPage(agent, { ui_locales: 'en' }, { 'accept-language': 'ja' });
    expect(languageOf(hinted)).toBe('en');

    // Saved as German on the profile: the account's locale beats the browser's Accept-Language.
    const german = await createTestAccount(server.db, { locale: 'de' });
    const browser = new UserAgent();
    const form = await loginPage(browser, {}, { 'accept-language': 'fr, en;q=0.5' });
    expect(languageOf(form)).toBe('fr');
    const signedIn = await browser.follow(
      `${server.issuer}${formActions(form.body).find((candidate) => candidate.endsWith('/login'))!}`,
      redirectUri,
      {
        form: { _csrf: hiddenField(form.body, '_csrf'), email: german.email, password: german.password },
        headers: { 'accept-language': 'fr, en;q=0.5' },
      },
    );
    if ('stoppedAt' in signedIn) throw new Error('expected the consent page');
    expect(languageOf(signedIn)).toBe('de');
    expect(signedIn.body).toContain('Zulassen');
  });

  it('has a switcher that works without JavaScript, overrides every hint, and only returns to this site', async () => {
    const agent = new UserAgent();
    const page = await loginPage(agent, { ui_locales: 'en' });
    const switchLink = /<a href="([^"]+)" lang="ja" hreflang="ja">日本語<\/a>/.exec(page.body)![1]!.replaceAll('&amp;', '&');
    const switched = await agent.request(`${server.issuer}${switchLink}`);
    expect(switched.status).toBe(303);
    expect(switched.location).toBe(page.url);
    expect(switched.headers.getSetCookie()[0]).toMatch(/^lang=ja;.*httponly/i);
    expect(languageOf(await agent.request(switched.location!))).toBe('ja');

    for (const next of ['https://evil.example/', '//evil.example', '/\\evil.example']) {
      const away = await agent.request(`${server.issuer}/lang/en?next=${encodeURIComponent(next)}`);
      expect(away.location, next).toBe(`${server.issuer}/account`);
    }
    expect((await agent.request(`${server.issuer}/lang/xx?next=/account`)).status).toBe(404);

    // Every language is on the switcher, in its own name, marked with its own language.
    for (const code of languages) {
      expect(page.body, code).toMatch(
        new RegExp(`<a href="/lang/${code}\\?next=[^"]+" lang="${code}" hreflang="${code}"[^>]*>${languageNames[code]}</a>`),
      );
    }
    const korean = await agent.request(`${server.issuer}/lang/ko?next=/account/sign-in`);
    const koreanPage = await agent.request(korean.location!);
    expect(languageOf(koreanPage)).toBe('ko');
    expect(koreanPage.body).toContain('aria-current="true">한국어</a>');
  });

  /** The pages a person meets, in one language: sign-in, registration, account pages, errors. */
  async function pagesIn(language: Language): Promise<PageResponse[]> {
    const account = await createTestAccount(server.db, { locale: language });
    const agent = new UserAgent();
    await agent.request(`${server.issuer}/lang/${language}?next=/account`);
    const login = await loginPage(agent);
    const register = await agent.request(
      `${server.issuer}${formActions(login.body)
        .find((a) => a.endsWith('/login'))!
        .replace(/login$/, 'register')}`,
    );
    const accountPages = new UserAgent();
    await accountPages.request(`${server.issuer}/lang/${language}?next=/account`);
    await signInToAccountPages(accountPages, server.issuer, account.email, account.password);
    await connectService(server, new UserAgent(), account, { port: 9902, name: 'Travel' });
    const pages = [
      login,
      register,
      await agent.request(`${server.issuer}/nowhere`),
      await agent.request(`${server.issuer}/password/forgot`),
    ];
    for (const path of [
      '/account',
      '/account/password',
      '/account/services',
      '/account/activity',
      '/account/data',
      '/account/delete',
      '/account/security',
    ]) {
      pages.push(await accountPages.request(`${server.issuer}${path}`));
    }
    return pages;
  }

  // English messages of at least three words: one showing on another language's page is a missed translation.
  const englishSentences = () => Object.values(messagesOf('en')).filter((text) => !text.includes('{') && text.split(' ').length >= 3);

  it('shows no English on the pages of any other language', { timeout: 60_000 }, async () => {
    for (const language of languages.filter((code) => code !== 'en')) {
      const sentences = englishSentences();
      for (const page of await pagesIn(language)) {
        expect(languageOf(page), page.url).toBe(language);
        const text = visibleText(page);
        expect(
          sentences.filter((sentence) => text.includes(sentence)),
          `${language} ${page.url}`,
        ).toEqual([]);
      }
    }
  });

  it('shows no Latin words at all on Japanese, Chinese and Korean pages, beyond names and identifiers', { timeout: 60_000 }, async () => {
    // Names that are the same in every language: the brand, a service, language names, addresses, technical terms.
    // IANA time-zone names (Asia/Tokyo) are identifiers, listed beside each zone's own name.
    const names = Object.values(languageNames).join('|');
    const allowed = new RegExp(
      `Group ID|Travel|${names}|UTC|GMT|JST|JSON|OS|Linux|Chrome|Node|undici|userinfo|introspection|JavaScript|\\S+@\\S+|[A-Z][A-Za-z]+\\/[A-Za-z0-9 +\\-/]+|Etc\\/\\S+`,
      'g',
    );
    for (const language of ['ja', 'zh-Hant', 'ko'] as const) {
      for (const page of await pagesIn(language)) {
        const latin = visibleText(page)
          .replace(allowed, '')
          .match(/[A-Za-z]{3,}/g);
        expect(latin, `${language} ${page.url}`).toBeNull();
      }
    }
  });
});

describe('mail language', () => {
  it('writes verification and reset mail in the language of the page the person used', async () => {
    const person = { email: uniqueEmail('nihongo'), password: 'a long enough password', registerName: '山田 花子' };
    const agent = new UserAgent();
    await agent.request(`${server.issuer}/lang/ja?next=/account`);
    await connectService(server, agent, person, { port: 9903 });
    const verify = await latestMail(server.db, person.email, 'verify_email');
    expect(verify.language).toBe('ja');
    expect(verify.subject).toBe('メールアドレスの確認');
    expect(verify.body).toContain('リンクは一度だけ使え、72時間で期限が切れます。');

    const form = await agent.request(`${server.issuer}/password/forgot`);
    const sent = await agent.request(`${server.issuer}/password/forgot`, {
      form: { _csrf: hiddenField(form.body, '_csrf'), email: person.email },
    });
    expect(sent.body).toContain('メールをご確認ください');
    const reset = await latestMail(server.db, person.email, 'reset_password');
    expect(reset.subject).toBe('新しいパスワードの設定');
    expect(reset.body).toContain('60分で期限が切れます');
  });

  it('writes mail in each of the new languages, chosen by the browser alone', async () => {
    const expected = {
      'zh-Hant': '請確認您的電子郵件地址',
      ko: '이메일 주소를 확인해 주세요',
      fr: 'Confirmez votre adresse e-mail',
      de: 'E-Mail-Adresse bestätigen',
      es: 'Confirma tu correo electrónico',
    } as const;
    const browserTags = { 'zh-Hant': 'zh-TW', ko: 'ko-KR', fr: 'fr-CH', de: 'de-AT', es: 'es-MX' } as const;
    for (const language of Object.keys(expected) as (keyof typeof expected)[]) {
      const person = { email: uniqueEmail(`mail-${language}`), password: 'a long enough password', registerName: 'Sam' };
      const agent = new UserAgent({ headers: { 'accept-language': `${browserTags[language]}, en;q=0.5` } });
      await connectService(server, agent, person, { port: 9904 });
      const verify = await latestMail(server.db, person.email, 'verify_email');
      expect(verify.language, language).toBe(language);
      expect(verify.subject, language).toBe(expected[language]);
      expect(verify.body, language).toContain(messagesOf(language)['mail.verify.body']);
    }
  });
});

import type { Context } from 'koa';
import type { PlainKey } from '../../i18n/catalogue.js';
import { pageTranslator, renderPage, type PageData } from '../render.js';
import { signedIn } from './session.js';

export type AccountSection = 'profile' | 'password' | 'security' | 'services' | 'activity' | 'data';

const sections: { section: AccountSection; href: string; label: PlainKey }[] = [
  { section: 'profile', href: '/account', label: 'account.nav.profile' },
  { section: 'password', href: '/account/password', label: 'account.nav.password' },
  { section: 'security', href: '/account/security', label: 'account.nav.security' },
  { section: 'services', href: '/account/services', label: 'account.nav.services' },
  { section: 'activity', href: '/account/activity', label: 'account.nav.activity' },
  { section: 'data', href: '/account/data', label: 'account.nav.data' },
];

/** Results shown after a redirect (post/redirect/get), named in the query: `?done=profile-saved`. */
const notices: Record<string, PlainKey> = {
  'profile-saved': 'profile.saved',
  'email-resent': 'email.resent',
  'email-change-sent': 'email.change.sent',
  'password-changed': 'password.changed',
  'service-revoked': 'services.revoked',
  'item-withdrawn': 'services.withdrawn',
  'signed-out-everywhere': 'activity.signedOut',
  'passkey-added': 'security.done.passkeyAdded',
  'passkey-renamed': 'security.done.passkeyRenamed',
  'passkey-removed': 'security.done.passkeyRemoved',
  'authenticator-added': 'security.done.authenticatorAdded',
  'authenticator-removed': 'security.done.authenticatorRemoved',
  'session-ended': 'security.done.sessionEnded',
  'other-sessions-ended': 'security.done.otherSessionsEnded',
};

export function doneRedirect(ctx: Context, path: string, notice: keyof typeof notices): void {
  ctx.status = 303;
  ctx.redirect(`${path}?done=${notice}`);
}

/** An account page: the section navigation, who is signed in, and the result of the last action. */
export function renderAccountPage(
  ctx: Context,
  template: string,
  section: AccountSection,
  data: PageData & { error?: string; errorField?: string },
  status = 200,
): void {
  const t = pageTranslator(ctx);
  const { account } = signedIn(ctx);
  const done = typeof ctx.query['done'] === 'string' ? notices[ctx.query['done']] : undefined;
  const path = sections.find((entry) => entry.section === section)!.href;
  // After a form post the language switcher reopens this section.
  ctx.state['returnPath'] = path;
  renderPage(
    ctx,
    template,
    {
      ...data,
      wide: true,
      account,
      signedInAs: t('account.signedInAs', { email: account.email }),
      nav: sections.map((entry) => ({ href: entry.href, label: t(entry.label), current: entry.section === section })),
      notice: status === 200 && done ? t(done) : undefined,
    },
    status,
  );
}

import { errors as oidcErrors, type KoaContextWithOIDC } from 'oidc-provider';
import type { PlainKey } from '../i18n/catalogue.js';
import type { ProviderPages } from '../oidc/provider.js';
import { useLanguage } from './language.js';
import { pageTranslator, renderPage } from './render.js';

function clientName(ctx: KoaContextWithOIDC): string | undefined {
  const client = ctx.oidc?.client;
  return client ? (client.clientName ?? client.clientId) : undefined;
}

/** The service's ui_locales hint, when the request carried one. */
function hints(ctx: KoaContextWithOIDC) {
  return { uiLocales: (ctx.oidc?.params as Record<string, unknown> | undefined)?.['ui_locales'] };
}

/** The action and CSRF value of a form oidc-provider built, for a form of our own that posts the same. */
function formParts(form: string): { action: string; xsrf: string } {
  return {
    action: /action="([^"]+)"/.exec(form)?.[1] ?? '',
    xsrf: /name="xsrf" value="([^"]*)"/.exec(form)?.[1] ?? '',
  };
}

/** What to tell the person about a user code that did not lead on (oidc-provider's re-render errors, by name). */
const userCodeMessages: Record<string, PlainKey> = {
  NotFoundError: 'device.code.error.notFound',
  ExpiredError: 'device.code.error.expired',
  AlreadyUsedError: 'device.code.error.used',
  NoCodeError: 'device.code.error.missing',
  AbortedError: 'device.code.error.aborted',
};

/** Set for the request when a user code matched no device: the device-code limit counts it (device-code-throttle.ts). */
export const USER_CODE_MISS = 'userCodeMiss';

/** oidc-provider's own pages (errors, logout, device sign-in) in our layout and languages. */
export const providerPages: ProviderPages = {
  async renderError(ctx, out, error) {
    useLanguage(ctx, hints(ctx));
    // The spec's error code and the library's description are shown as technical details
    // (they are for the service's developers); the person reads a message in their language.
    renderPage(
      ctx,
      'error',
      {
        title: 'error.title',
        heading: 'error.heading',
        message: pageTranslator(ctx)(error instanceof oidcErrors.SessionNotFound ? 'error.sessionNotFound' : 'error.oidcRequest'),
        code: out.error,
        details: out.error_description,
      },
      ctx.status >= 400 ? ctx.status : 400,
    );
  },
  async logoutConfirmation(ctx, form) {
    useLanguage(ctx, hints(ctx));
    renderPage(ctx, 'logout', { title: 'logout.title', clientName: clientName(ctx), form });
  },
  async logoutSuccess(ctx) {
    useLanguage(ctx, hints(ctx));
    renderPage(ctx, 'logged-out', { title: 'loggedOut.title', clientName: clientName(ctx) });
  },
  async deviceCodeEntry(ctx, form, error) {
    useLanguage(ctx, {});
    const t = pageTranslator(ctx);
    if (error?.name === 'NotFoundError') ctx.state[USER_CODE_MISS] = true;
    const submitted = (ctx.oidc?.params as Record<string, unknown> | undefined)?.['user_code'];
    renderPage(
      ctx,
      'device-code',
      {
        title: 'device.code.title',
        ...formParts(form),
        userCode: typeof submitted === 'string' && error?.name === 'NotFoundError' ? submitted : '',
        error: error ? t(userCodeMessages[error.name] ?? 'device.code.error.other') : undefined,
      },
      error && error.name !== 'AbortedError' ? 400 : 200,
    );
  },
  async deviceCodeConfirmation(ctx, form, deviceInfo, userCode) {
    useLanguage(ctx, {});
    const t = pageTranslator(ctx);
    const known = (value: string | undefined) => (value && value !== 'unknown' ? value : undefined);
    const device =
      known(deviceInfo.browser) || known(deviceInfo.os)
        ? t('device.confirm.deviceValue', {
            browser: known(deviceInfo.browser) ?? t('activity.unknown'),
            os: known(deviceInfo.os) ?? t('activity.unknown'),
          })
        : t('device.confirm.unknownDevice');
    renderPage(ctx, 'device-confirm', { title: 'device.confirm.title', ...formParts(form), userCode, clientName: clientName(ctx), device });
  },
  async deviceDone(ctx) {
    useLanguage(ctx, {});
    renderPage(ctx, 'device-done', { title: 'device.done.title', clientName: clientName(ctx) });
  },
};

import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { sessionClientIds } from '../../accounts/connections.js';
import { changePassword } from '../../accounts/password-changes.js';
import { hashPassword, passwordSchema } from '../../accounts/passwords.js';
import { recordAuditEvent } from '../../audit/log.js';
import { notifyLogout } from '../../logout/notify.js';
import { firstProblem } from '../form-errors.js';
import { formBody, readForm } from '../forms.js';
import { currentLanguage } from '../language.js';
import { sendNotice } from '../link-mail.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { reauthenticate } from './reauthenticate.js';
import { signedIn } from './session.js';
import { doneRedirect, renderAccountPage } from './view.js';

const passwordForm = z.object({
  currentPassword: z.string().max(1000).default(''),
  newPassword: z.string().max(1000).default(''),
  _csrf: z.string().max(200).optional(),
});
const newPasswordFields = z.object({ newPassword: passwordSchema });

/** Changing the password needs the current one; afterwards every other session is signed out. */
export function passwordRoutes(router: Router, deps: SelfServiceDeps): void {
  function renderPassword(ctx: Context, extra: { error?: string; errorField?: string } = {}, status = 200) {
    renderAccountPage(ctx, 'account/password', 'password', { title: 'password.title', ...extra }, status);
  }

  router.get('/password', (ctx) => renderPassword(ctx));

  router.post('/password', formBody, async (ctx) => {
    const form = readForm(ctx, passwordForm);
    const { account, sessionId } = signedIn(ctx);
    const wrong = await reauthenticate(ctx, deps, account, form.currentPassword);
    if (wrong) return renderPassword(ctx, { error: wrong, errorField: 'currentPassword' }, ctx.status === 429 ? 429 : 400);
    const fields = newPasswordFields.safeParse(form);
    if (!fields.success) {
      const problem = firstProblem(pageTranslator(ctx), fields.error);
      return renderPassword(ctx, { error: problem.message, errorField: problem.field }, 400);
    }
    const passwordHash = await hashPassword(fields.data.newPassword);
    // Services are told before their sessions go: the notice names the sessions it ends.
    await notifyLogout(deps, { accountId: account.id, clientIds: await sessionClientIds(deps.db, account.id), reason: 'session_ended' });
    await changePassword(deps.db, account.id, passwordHash, sessionId);
    await recordAuditEvent(deps.db, { event: 'password.changed', outcome: 'success', actor: account.id, ip: ctx.ip });
    await sendNotice(deps, 'password_changed', { to: account.email, accountId: account.id, language: currentLanguage(ctx) });
    doneRedirect(ctx, '/account/password', 'password-changed');
  });
}

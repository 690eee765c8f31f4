import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { passwordSchema } from '../../accounts/passwords.js';
import { changePassword } from '../../use-cases/change-password.js';
import { firstProblem } from '../form-errors.js';
import { formBody, readForm } from '../forms.js';
import { currentLanguage } from '../language.js';
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
    await changePassword(deps, {
      accountId: account.id,
      newPassword: fields.data.newPassword,
      actor: { kind: 'self', ip: ctx.ip },
      language: currentLanguage(ctx),
      keepAccountSession: sessionId,
    });
    doneRedirect(ctx, '/account/password', 'password-changed');
  });
}

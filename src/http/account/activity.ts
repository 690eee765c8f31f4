import type Router from '@koa/router';
import { z } from 'zod';
import { listRecentSignIns } from '../../audit/sign-ins.js';
import { endAllSessions } from '../../use-cases/end-sessions.js';
import { formBody, readForm } from '../forms.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { signedIn } from './session.js';
import { doneRedirect, renderAccountPage } from './view.js';

/** Recent sign-ins (when, to which service, from which kind of browser; never the IP address), and signing out everywhere. */
export function activityRoutes(router: Router, deps: SelfServiceDeps): void {
  router.get('/activity', async (ctx) => {
    const { account } = signedIn(ctx);
    const t = pageTranslator(ctx);
    const known = (value: string | null) => (value && value !== 'unknown' ? value : t('activity.unknown'));
    const signIns = await listRecentSignIns(deps.db, account.id);
    renderAccountPage(ctx, 'account/activity', 'activity', {
      title: 'activity.title',
      signIns: signIns.map((signIn) => ({
        occurredAt: signIn.occurredAt,
        service: signIn.clientId ? (signIn.clientName ?? signIn.clientId) : t('activity.accountPage'),
        device: t('activity.deviceValue', { browser: known(signIn.browser), os: known(signIn.os) }),
      })),
    });
  });

  router.post('/activity/sign-out-everywhere', formBody, async (ctx) => {
    readForm(ctx, z.object({ _csrf: z.string().max(200).optional() }));
    const { account, sessionId } = signedIn(ctx);
    await endAllSessions(deps, { accountId: account.id, actor: { kind: 'self', ip: ctx.ip }, keepAccountSession: sessionId });
    doneRedirect(ctx, '/account/activity', 'signed-out-everywhere');
  });
}

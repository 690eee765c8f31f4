import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { recordAuditEvent } from '../../audit/log.js';
import { deleteAccount } from '../../use-cases/delete-account.js';
import { exportAccountData } from '../../use-cases/export-account-data.js';
import { formBody, readForm } from '../forms.js';
import { renderNotice } from '../link-pages.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { reauthenticate } from './reauthenticate.js';
import { finishAccountSession, signedIn } from './session.js';
import { renderAccountPage } from './view.js';

/** The names services are registered under, for telling the person which ones heard of a change. */
async function serviceNames(deps: SelfServiceDeps, clientIds: readonly string[]): Promise<string[]> {
  const clients = await Promise.all(clientIds.map((clientId) => deps.provider.Client.find(clientId)));
  return clients.map((client, index) => client?.clientName ?? clientIds[index]!).sort((a, b) => a.localeCompare(b));
}

const csrfOnly = z.object({ _csrf: z.string().max(200).optional() });
const deleteForm = z.object({
  password: z.string().max(1000).default(''),
  confirm: z.string().max(10).optional(),
  _csrf: z.string().max(200).optional(),
});

/** Your data: download everything we hold, or delete the account. */
export function dataRoutes(router: Router, deps: SelfServiceDeps): void {
  const { db } = deps;

  router.get('/data', (ctx) => renderAccountPage(ctx, 'account/data', 'data', { title: 'data.title' }));

  router.post('/data/export', formBody, async (ctx) => {
    readForm(ctx, csrfOnly);
    const { account } = signedIn(ctx);
    const data = await exportAccountData(db, account.id);
    await recordAuditEvent(db, { event: 'data.exported', outcome: 'success', actor: account.id, ip: ctx.ip });
    ctx.set('cache-control', 'no-store');
    ctx.set('content-disposition', 'attachment; filename="group-id-account.json"');
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(data, null, 2);
  });

  function renderDelete(ctx: Context, extra: { error?: string; errorField?: string } = {}, status = 200) {
    const { account } = signedIn(ctx);
    renderAccountPage(
      ctx,
      'account/delete',
      'data',
      { title: 'delete.title', lead: pageTranslator(ctx)('delete.lead', { email: account.email }), ...extra },
      status,
    );
  }

  router.get('/delete', (ctx) => renderDelete(ctx));

  router.post('/delete', formBody, async (ctx) => {
    const form = readForm(ctx, deleteForm);
    const { account } = signedIn(ctx);
    const wrong = await reauthenticate(ctx, deps, account, form.password);
    if (wrong) return renderDelete(ctx, { error: wrong, errorField: 'password' }, ctx.status === 429 ? 429 : 400);
    if (form.confirm !== 'yes')
      return renderDelete(ctx, { error: pageTranslator(ctx)('delete.error.confirm'), errorField: 'confirm' }, 400);

    const { toldOfDeletion } = await deleteAccount(deps, { accountId: account.id, actor: { kind: 'self', ip: ctx.ip } });
    await finishAccountSession(ctx, deps);
    // Answered here rather than after a redirect: which services were told is known only now.
    const t = pageTranslator(ctx);
    const names = await serviceNames(deps, toldOfDeletion);
    ctx.set('cache-control', 'no-store');
    renderNotice(ctx, 'delete.done.title', [
      t('delete.done.lead'),
      names.length ? t('delete.done.told', { services: names.join(t('list.separator')) }) : t('delete.done.toldNone'),
    ]);
  });

  router.get('/deleted', (ctx) => {
    renderNotice(ctx, 'delete.done.title', [pageTranslator(ctx)('delete.done.lead')]);
  });
}

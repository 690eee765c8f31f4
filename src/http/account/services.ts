import type Router from '@koa/router';
import { z } from 'zod';
import { describeScopes } from '../../accounts/claims.js';
import { listConnectedServices, revokeServiceGrants } from '../../accounts/connections.js';
import { recordAuditEvent } from '../../audit/log.js';
import { notifyLogout } from '../../logout/notify.js';
import { formBody, readForm } from '../forms.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { signedIn } from './session.js';
import { doneRedirect, renderAccountPage } from './view.js';

const revokeForm = z.object({ clientId: z.string().min(1).max(200), _csrf: z.string().max(200).optional() });

/** Connected services: what each receives, in plain words, when it was used, and a way to disconnect it. */
export function serviceRoutes(router: Router, deps: SelfServiceDeps): void {
  router.get('/services', async (ctx) => {
    const { account } = signedIn(ctx);
    const t = pageTranslator(ctx);
    const services = await listConnectedServices(deps.db, account.id);
    renderAccountPage(ctx, 'account/services', 'services', {
      title: 'services.title',
      services: services.map((service) => ({
        clientId: service.clientId,
        name: service.name,
        disclosures: describeScopes(service.scopes),
        firstUsedAt: service.firstUsedAt,
        lastUsedAt: service.lastUsedAt,
        revokeLabel: t('services.revoke', { service: service.name }),
      })),
    });
  });

  router.post('/services/revoke', formBody, async (ctx) => {
    const form = readForm(ctx, revokeForm);
    const { account } = signedIn(ctx);
    const services = await listConnectedServices(deps.db, account.id);
    if (!services.some((service) => service.clientId === form.clientId)) return doneRedirect(ctx, '/account/services', 'service-revoked');
    // Told first: the service learns of the sessions that the revocation ends for it.
    await notifyLogout(deps, { accountId: account.id, clientIds: [form.clientId], reason: 'grant_revoked' });
    await revokeServiceGrants(deps.db, account.id, form.clientId);
    await recordAuditEvent(deps.db, { event: 'grant.revoked', outcome: 'success', actor: account.id, clientId: form.clientId, ip: ctx.ip });
    doneRedirect(ctx, '/account/services', 'service-revoked');
  });
}

import type Router from '@koa/router';
import { z } from 'zod';
import { describeScopes } from '../../accounts/claims.js';
import { listGrantedServices } from '../../oidc/artefacts.js';
import { disconnectService } from '../../use-cases/disconnect-service.js';
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
    const services = await listGrantedServices(deps.db, account.id);
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
    // A service without a grant of this account answers the same: there is nothing to disconnect.
    await disconnectService(deps, { accountId: account.id, clientId: form.clientId, actor: { kind: 'self', ip: ctx.ip } });
    doneRedirect(ctx, '/account/services', 'service-revoked');
  });
}

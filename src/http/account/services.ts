import type Router from '@koa/router';
import { z } from 'zod';
import { listClaimReleases, type ClaimRelease } from '../../accounts/claim-releases.js';
import { claimLabels, describeScopes } from '../../accounts/claims.js';
import type { PlainKey } from '../../i18n/catalogue.js';
import { listGrantedServices } from '../../oidc/artefacts.js';
import { disconnectService } from '../../use-cases/disconnect-service.js';
import { withdrawSharedItem } from '../../use-cases/withdraw-shared-item.js';
import { formBody, readForm } from '../forms.js';
import { pageTranslator } from '../render.js';
import type { SelfServiceDeps } from '../self-service.js';
import { signedIn } from './session.js';
import { doneRedirect, renderAccountPage } from './view.js';

// A client_id is visible ASCII (RFC 6749 appendix A.1): anything else, a NUL above all, names no service.
const revokeForm = z.object({
  clientId: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\x20-\x7e]+$/),
  _csrf: z.string().max(200).optional(),
});
const withdrawForm = revokeForm.extend({ scope: z.string().min(1).max(100) });

const claimLabel = (claim: string): PlainKey | undefined =>
  claim in claimLabels ? claimLabels[claim as keyof typeof claimLabels] : undefined;

/** A service's releases, one line per route: the claims, and when the first and last went. */
function byRoute(releases: ClaimRelease[]) {
  const routes = [...new Set(releases.map((release) => release.route))];
  return routes.map((route) => {
    const these = releases.filter((release) => release.route === route);
    return {
      route,
      claims: these.map((release) => ({ claim: release.claim, label: claimLabel(release.claim) })),
      firstAt: new Date(Math.min(...these.map((release) => release.firstAt.getTime()))),
      lastAt: new Date(Math.max(...these.map((release) => release.lastAt.getTime()))),
    };
  });
}

/** Connected services: what each receives, in plain words, when it was used, and a way to disconnect it. */
export function serviceRoutes(router: Router, deps: SelfServiceDeps): void {
  router.get('/services', async (ctx) => {
    const { account } = signedIn(ctx);
    const t = pageTranslator(ctx);
    const [services, releases] = await Promise.all([listGrantedServices(deps.db, account.id), listClaimReleases(deps.db, account.id)]);
    renderAccountPage(ctx, 'account/services', 'services', {
      title: 'services.title',
      services: services.map((service) => ({
        clientId: service.clientId,
        name: service.name,
        disclosures: describeScopes(service.scopes).map((disclosure) => ({
          ...disclosure,
          optional: service.optionalScopes.includes(disclosure.scope),
        })),
        withdrawLabel: t('services.withdraw', { service: service.name }),
        releases: byRoute(releases.filter((release) => release.clientId === service.clientId)),
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

  router.post('/services/withdraw', formBody, async (ctx) => {
    const form = readForm(ctx, withdrawForm);
    const { account } = signedIn(ctx);
    // Nothing to withdraw (not shared, or required) answers the same: the page shows what is shared.
    await withdrawSharedItem(deps, {
      accountId: account.id,
      clientId: form.clientId,
      scope: form.scope,
      actor: { kind: 'self', ip: ctx.ip },
    });
    doneRedirect(ctx, '/account/services', 'item-withdrawn');
  });
}

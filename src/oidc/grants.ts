import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';

export function isFirstParty(client: { [key: string]: unknown } | undefined): boolean {
  return client?.['first_party'] === true;
}

/** Requested OIDC scopes the client is registered for; the ones a first-party client gets without asking. */
function permittedScopes(requested: string, clientScope: string | undefined): string[] {
  const allowed = new Set((clientScope ?? '').split(' '));
  return requested.split(' ').filter((scope) => allowed.has(scope));
}

/** The newest live grant of an account to a service, wherever it was given (any session, any browser). */
export type AccountGrantLookup = (accountId: string, clientId: string) => Promise<string | undefined>;

/**
 * Consent belongs to the person and the service, not to a browser session: oidc-provider's
 * default finds a grant only through the session, so a person who allowed a service
 * yesterday, in another browser or before signing out, was asked again. The grant is looked
 * up through this session first, then per account and service. First-party services skip the
 * consent page: their grant is created (or topped up) here.
 */
export function existingGrantLoader(findAccountGrant: AccountGrantLookup): NonNullable<Configuration['loadExistingGrant']> {
  return async (ctx: KoaContextWithOIDC) => {
    const { client, session } = ctx.oidc;
    if (!client || !session?.accountId) return undefined;
    const Grant = ctx.oidc.provider.Grant;
    const sessionGrantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
    let existing = sessionGrantId ? await Grant.find(sessionGrantId) : undefined;
    if (!existing) {
      const accountGrantId = await findAccountGrant(session.accountId, client.clientId);
      existing = accountGrantId ? await Grant.find(accountGrantId) : undefined;
    }
    const stored = existing && whatItGrants(existing);
    // What the person declined or withdrew is asked again at the next request for it, but not
    // again in the sign-in where they just answered (its resumption carries their consent).
    if (existing && !ctx.oidc.result?.consent) forgetDeclined(existing);
    if (!isFirstParty(client as unknown as { [key: string]: unknown })) return existing;
    const grant = existing ?? new Grant({ clientId: client.clientId, accountId: session.accountId });
    const requested = String(ctx.oidc.params?.['scope'] ?? 'openid');
    grant.addOIDCScope(permittedScopes(requested, client.scope).join(' '));
    // A grant that already holds all of it is not written again: saving keeps its expiry, so
    // the write (and the change notice every instance would act on) would change nothing.
    if (whatItGrants(grant) !== stored) await grant.save();
    return grant;
  };
}

type GrantInstance = InstanceType<KoaContextWithOIDC['oidc']['provider']['Grant']>;

/** What a grant holds, as oidc-provider keeps it (Grant.openid and Grant.rejected, payload fields). */
export interface GrantScopes {
  openid?: { scope?: string };
  rejected?: { openid?: { scope?: string } };
}

const without = (scopes: string | undefined, scope: string) =>
  (scopes ?? '')
    .split(' ')
    .filter((name) => name && name !== scope)
    .join(' ');

/** What a grant gives and withholds (the parts of its payload that a sign-in may change), comparable as text. */
function whatItGrants(grant: GrantInstance): string {
  const { openid, rejected, resources, rar } = grant as unknown as GrantScopes & { resources?: unknown; rar?: unknown };
  return JSON.stringify({ openid, rejected, resources, rar });
}

/** Drops what a grant says the person declined, for this request only (the grant is not saved). */
function forgetDeclined(grant: GrantInstance): void {
  delete (grant as unknown as GrantScopes).rejected;
}

/** Shares a scope the person had declined or withdrawn: granted, and no longer declined. */
export function shareScope(grant: GrantInstance, scope: string): void {
  grant.addOIDCScope(scope);
  const declined = (grant as unknown as GrantScopes).rejected?.openid;
  if (declined?.scope) declined.scope = without(declined.scope, scope);
}

/**
 * Stops sharing a scope (withdrawn on /account, or left unticked): no longer granted, and
 * recorded as declined so this sign-in completes; tokens issued from now on lack it.
 */
export function withholdScope(grant: GrantInstance, scope: string): void {
  withholdScopeIn(grant as unknown as GrantScopes, scope);
}

/** withholdScope on a grant as stored (its payload), for changes made outside a request. */
export function withholdScopeIn(grant: GrantScopes, scope: string): void {
  if (grant.openid?.scope) grant.openid.scope = without(grant.openid.scope, scope);
  const rejected = (grant.rejected ??= {});
  const declined = (rejected.openid ??= {});
  declined.scope = [...without(declined.scope, scope).split(' ').filter(Boolean), scope].join(' ');
}

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { createAccount, getAccount, listAccounts, type Account } from '../../accounts/store.js';
import { recordAuditEvent } from '../../audit/log.js';
import { defaultLanguage, languageOfTag, type Language } from '../../i18n/catalogue.js';
import { mailRequester } from '../../security/throttle.js';
import { changePassword } from '../../use-cases/change-password.js';
import { requestEmailChange } from '../../use-cases/change-email.js';
import { deleteAccount } from '../../use-cases/delete-account.js';
import { disconnectService } from '../../use-cases/disconnect-service.js';
import { requestPasswordReset } from '../../use-cases/reset-password.js';
import { resetSignInFactors } from '../../use-cases/remove-factor.js';
import { setAccountEnabled } from '../../use-cases/disable-account.js';
import { factorsOf, type Factors } from '../../factors/summary.js';
import { parseOrThrow } from '../../validation.js';
import type { Command } from '../command.js';
import { describeRecord, describeTable, UsageError } from '../output.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * Passwords never come from argv (shell history, `ps`): either stdin, or generated here
 * and shown once.
 */
async function passwordFrom(values: Record<string, unknown>): Promise<{ password: string; generated: boolean }> {
  if (values['password-stdin'] === true) return { password: await readStdin(), generated: false };
  return { password: randomBytes(18).toString('base64url'), generated: true };
}

function accountText(account: Account): string {
  return describeRecord({
    id: account.id,
    email: account.email,
    email_verified: account.emailVerified ? 'yes' : 'no',
    name: account.name,
    given_name: account.givenName,
    family_name: account.familyName,
    locale: account.locale,
    created_at: account.createdAt,
    updated_at: account.updatedAt,
    disabled: account.disabledAt ? `since ${account.disabledAt.toISOString()}` : 'no',
  });
}

/** An account's sign-in factors for support: kinds, names, counts and dates, never a secret. */
function factorsText(factors: Factors): string {
  const summary = describeRecord({
    passkeys: factors.passkeys.length,
    authenticator_app: factors.totp
      ? `added ${factors.totp.createdAt.toISOString()}, last used ${factors.totp.lastUsedAt?.toISOString() ?? 'never'}`
      : 'none',
    recovery_codes: factors.recoveryCodes.total ? `${factors.recoveryCodes.unused} of ${factors.recoveryCodes.total} unused` : 'none',
  });
  if (factors.passkeys.length === 0) return summary;
  const passkeys = describeTable(
    factors.passkeys.map((passkey) => ({
      passkey: passkey.name,
      kind: passkey.deviceType === 'multiDevice' ? 'synced' : 'device-bound',
      added: passkey.createdAt,
      last_used: passkey.lastUsedAt ?? 'never',
    })),
    ['passkey', 'kind', 'added', 'last_used'],
  );
  return `${summary}\n\n${passkeys}`;
}

/** Mail an administrator's action causes is written in the person's own language. */
const languageOf = (account: Account): Language => languageOfTag(account.locale) ?? defaultLanguage;

const admin = { kind: 'admin' } as const;

const pagination = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

export const accountCommands: Command[] = [
  {
    name: 'accounts add',
    usage:
      'idp accounts add --email <email> [--name ..] [--given-name ..] [--family-name ..] [--locale ..] [--email-verified] [--password-stdin]',
    summary: 'create an account; without --password-stdin a password is generated and shown once',
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      'given-name': { type: 'string' },
      'family-name': { type: 'string' },
      locale: { type: 'string' },
      'email-verified': { type: 'boolean' },
      'password-stdin': { type: 'boolean' },
    },
    async run(runtime, values) {
      const { password, generated } = await passwordFrom(values);
      const account = await createAccount(runtime.db, {
        email: (values['email'] as string | undefined) ?? '',
        password,
        name: values['name'] as string | undefined,
        givenName: values['given-name'] as string | undefined,
        familyName: values['family-name'] as string | undefined,
        locale: values['locale'] as string | undefined,
        emailVerified: values['email-verified'] === true,
      });
      await recordAuditEvent(runtime.db, {
        event: 'account.created',
        outcome: 'success',
        actor: 'admin',
        details: { accountId: account.id },
      });
      const shown = generated ? password : undefined;
      return {
        json: { ...account, generatedPassword: shown ?? null },
        text: accountText(account) + (shown ? `\n\npassword  ${shown}\nShown only now; ask the user to change it.` : ''),
      };
    },
  },
  {
    name: 'accounts list',
    usage: 'idp accounts list [--limit <n>] [--offset <n>]',
    summary: 'list accounts, oldest first',
    options: { limit: { type: 'string' }, offset: { type: 'string' } },
    async run(runtime, values) {
      const page = parseOrThrow(pagination, { limit: values['limit'], offset: values['offset'] });
      const accounts = await listAccounts(runtime.db, page);
      return {
        json: accounts,
        text: describeTable(
          accounts.map((a) => ({
            id: a.id,
            email: a.email,
            verified: a.emailVerified ? 'yes' : 'no',
            name: a.name,
            created_at: a.createdAt,
          })),
          ['id', 'email', 'verified', 'name', 'created_at'],
        ),
      };
    },
  },
  {
    name: 'accounts show',
    usage: 'idp accounts show <id|email>',
    summary: 'show one account and its sign-in factors (kinds, names, counts, dates; never a secret)',
    options: {},
    positionals: ['account'],
    async run(runtime, _values, [reference]) {
      const account = await getAccount(runtime.db, reference!);
      const factors = await factorsOf(runtime.db, account.id);
      return { json: { ...account, factors }, text: `${accountText(account)}\n\n${factorsText(factors)}` };
    },
  },
  ...(['disable', 'enable'] as const).map((action): Command => ({
    name: `accounts ${action}`,
    usage: `idp accounts ${action} <id|email>`,
    summary:
      action === 'disable'
        ? 'stop an account signing in: every session and token ends, subscribed services hear account-disabled'
        : 'let a disabled account sign in again; subscribed services hear account-enabled',
    options: {},
    positionals: ['account'],
    async run(runtime, _values, [reference]) {
      const account = await getAccount(runtime.db, reference!);
      const { changed, told } = await setAccountEnabled(await runtime.workflowDeps(), {
        accountId: account.id,
        enabled: action === 'enable',
        actor: admin,
      });
      return {
        json: { id: account.id, disabled: action === 'disable', changed, told },
        text: changed
          ? `${action}d ${account.email}; ${told.length} service(s) told`
          : `${account.email} was already ${action}d; nothing changed`,
      };
    },
  })),
  {
    name: 'accounts mfa reset',
    usage: 'idp accounts mfa reset <id|email>',
    summary:
      'remove every passkey, authenticator app and recovery code of a person who lost them all; every session ends, the person is mailed',
    options: {},
    positionals: ['account'],
    async run(runtime, _values, [reference]) {
      const account = await getAccount(runtime.db, reference!);
      const removed = await resetSignInFactors(await runtime.workflowDeps(), {
        accountId: account.id,
        actor: admin,
        language: languageOf(account),
      });
      return {
        json: { id: account.id, removed },
        text:
          `removed ${removed.passkeys} passkey(s), ${removed.authenticatorApp ? 'the' : 'no'} authenticator app and ${removed.recoveryCodes} unused recovery code(s) ` +
          `of ${account.email}; every session ended and the person was mailed`,
      };
    },
  },
  {
    name: 'accounts set-password',
    usage: 'idp accounts set-password <id|email> [--password-stdin]',
    summary: 'set a new password (from stdin, or generated and shown once)',
    options: { 'password-stdin': { type: 'boolean' } },
    positionals: ['account'],
    async run(runtime, values, [reference]) {
      const account = await getAccount(runtime.db, reference!);
      const { password, generated } = await passwordFrom(values);
      // The same workflow as the person's own change: sessions end, tokens are revoked, services are told.
      await changePassword(await runtime.workflowDeps(), {
        accountId: account.id,
        newPassword: password,
        actor: admin,
        language: languageOf(account),
      });
      const shown = generated ? password : undefined;
      return {
        json: { id: account.id, passwordChanged: true, generatedPassword: shown ?? null },
        text: `password changed for ${account.email}` + (shown ? `\npassword  ${shown}\nShown only now.` : ''),
      };
    },
  },
  {
    name: 'accounts remove',
    usage: 'idp accounts remove <id|email>',
    summary: 'delete an account with everything about it; its services get back-channel logout',
    options: {},
    positionals: ['account'],
    async run(runtime, _values, [reference]) {
      const account = await getAccount(runtime.db, reference!);
      const { notified, toldOfDeletion } = await deleteAccount(await runtime.workflowDeps(), { accountId: account.id, actor: admin });
      return {
        json: { id: account.id, removed: true, notified, toldOfDeletion },
        text:
          `removed account ${account.id}; back-channel logout queued for ${notified.length} service(s)` +
          `; account-purged event queued for ${toldOfDeletion.length} (${toldOfDeletion.join(', ') || 'none subscribed'})`,
      };
    },
  },
  {
    name: 'accounts reset-password',
    usage: 'idp accounts reset-password <id|email>',
    summary: 'mail the person a password-reset link (support), as the forgot-password page does',
    options: {},
    positionals: ['account'],
    async run(runtime, _values, [reference]) {
      const account = await getAccount(runtime.db, reference!);
      const { sent } = await requestPasswordReset(await runtime.workflowDeps(), {
        email: account.email,
        requester: mailRequester.admin(),
        ip: null,
        language: languageOf(account),
      });
      return {
        json: { id: account.id, linkSent: sent },
        text: sent ? `reset link mailed to ${account.email}` : `not sent: the mail limit for ${account.email} is reached; try again later`,
      };
    },
  },
  {
    name: 'accounts change-email',
    usage: 'idp accounts change-email <id|email> --email <new address>',
    summary: 'send a confirmation link to a new address (the account moves when it is opened); the current address is told and can undo it',
    options: { email: { type: 'string' } },
    positionals: ['account'],
    async run(runtime, values, [reference]) {
      if (typeof values['email'] !== 'string') throw new UsageError('--email <new address> is required');
      const account = await getAccount(runtime.db, reference!);
      await requestEmailChange(await runtime.workflowDeps(), {
        account,
        newEmail: values['email'],
        actor: admin,
        language: languageOf(account),
      });
      return {
        json: { id: account.id, confirmationSent: true },
        text: `confirmation link sent to the new address; ${account.email} was told and can undo the change`,
      };
    },
  },
  {
    name: 'accounts disconnect',
    usage: 'idp accounts disconnect <id|email> --client <client_id>',
    summary: "remove a service's grants of an account and every token issued under them; the service gets back-channel logout",
    options: { client: { type: 'string' } },
    positionals: ['account'],
    async run(runtime, values, [reference]) {
      if (typeof values['client'] !== 'string' || !values['client']) throw new UsageError('--client <client_id> is required');
      const account = await getAccount(runtime.db, reference!);
      const disconnected = await disconnectService(await runtime.workflowDeps(), {
        accountId: account.id,
        clientId: values['client'],
        actor: admin,
      });
      return {
        json: { id: account.id, clientId: values['client'], disconnected },
        text: disconnected
          ? `disconnected ${values['client']} from ${account.email}`
          : `${values['client']} held no grant of ${account.email}`,
      };
    },
  },
];

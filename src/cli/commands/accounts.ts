import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { createAccount, deleteAccountRows, getAccount, listAccounts, setPassword, type Account } from '../../accounts/store.js';
import { recordAuditEvent } from '../../audit/log.js';
import { connectedClientIds } from '../../accounts/connections.js';
import { notifyLogout } from '../../logout/notify.js';
import { parseOrThrow } from '../../validation.js';
import type { Command } from '../command.js';
import { describeRecord, describeTable } from '../output.js';

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
  });
}

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
    summary: 'show one account',
    options: {},
    positionals: ['account'],
    async run(runtime, _values, [reference]) {
      const account = await getAccount(runtime.db, reference!);
      return { json: account, text: accountText(account) };
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
      await setPassword(runtime.db, account.id, password);
      await recordAuditEvent(runtime.db, {
        event: 'password.changed',
        outcome: 'success',
        actor: 'admin',
        details: { accountId: account.id },
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
    summary: 'delete an account with its sessions, grants and tokens; its services get back-channel logout',
    options: {},
    positionals: ['account'],
    async run(runtime, _values, [reference]) {
      const account = await getAccount(runtime.db, reference!);
      const provider = await runtime.provider();
      const clientIds = await connectedClientIds(runtime.db, account.id);
      // One transaction: the notices (sent by the server's worker) and the deletion.
      await runtime.db.transaction(async (tx) => {
        await notifyLogout({ db: tx, provider }, { accountId: account.id, clientIds, reason: 'account_deleted' });
        await deleteAccountRows(tx, account.id);
        await recordAuditEvent(tx, { event: 'account.deleted', outcome: 'success', actor: 'admin', details: { accountId: account.id } });
      });
      return {
        json: { id: account.id, removed: true, notified: clientIds },
        text: `removed account ${account.id}; back-channel logout queued for ${clientIds.length} service(s)`,
      };
    },
  },
];

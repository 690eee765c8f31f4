import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { readImportFile } from '../../accounts/import-records.js';
import { getClient } from '../../clients/store.js';
import { NotFound } from '../../errors.js';
import { exportAccounts } from '../../use-cases/export-accounts.js';
import { importAccounts } from '../../use-cases/import-accounts.js';
import { parseOrThrow } from '../../validation.js';
import type { Command } from '../command.js';
import { describeRecord, UsageError } from '../output.js';

const formatFlag = z.enum(['jsonl', 'csv'], { message: 'must be jsonl or csv' }).default('jsonl');

async function openInput(path: string): Promise<Readable> {
  if (path === '-') return process.stdin;
  await access(path).catch(() => {
    throw new NotFound(`cannot read ${path}`);
  });
  return createReadStream(path);
}

/** Writes to a file stream, waiting when it asks to (a mapping of a million rows is large). */
async function writeTo(stream: WriteStream | NodeJS.WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

async function closeOutput(stream: WriteStream): Promise<void> {
  stream.end();
  await once(stream, 'finish');
}

/** A progress line on a terminal only: pipes and CI logs get the summary alone. */
function progress(what: string): ((count: number) => void) & { done(): void } {
  const started = Date.now();
  const report = (count: number) => {
    if (!process.stderr.isTTY) return;
    const perSecond = Math.round(count / Math.max(0.001, (Date.now() - started) / 1000));
    process.stderr.write(`\r${what} ${count.toLocaleString('en')} rows (${perSecond.toLocaleString('en')}/s)`);
  };
  return Object.assign(report, { done: () => void (process.stderr.isTTY && process.stderr.write('\n')) });
}

export const accountFileCommands: Command[] = [
  {
    name: 'accounts import',
    usage: 'idp accounts import <file|-> [--format jsonl|csv] [--client <client_id>] [--mapping-out <file>] [--strict] [--dry-run]',
    summary:
      "bring a service's existing accounts in, with their password hashes (bcrypt, argon2, scrypt, PBKDF2); merges verified addresses; re-running changes nothing",
    options: {
      format: { type: 'string' },
      client: { type: 'string' },
      'mapping-out': { type: 'string' },
      strict: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
    },
    positionals: ['file'],
    async run(runtime, values, [path]) {
      const { format } = parseOrThrow(z.object({ format: formatFlag }), { format: values['format'] });
      const clientId = values['client'] as string | undefined;
      const mappingOut = values['mapping-out'] as string | undefined;
      if (mappingOut && !clientId) throw new UsageError('--mapping-out needs --client: the mapping gives the sub that service sees');
      const deps = await runtime.workflowDeps();
      // getClient answers "no such client" (exit 1) for an unknown id.
      const client = clientId ? await getClient(runtime.db, clientId).then(() => deps.provider.Client.find(clientId)) : undefined;
      const input = await openInput(path!);
      const mapping = mappingOut && !values['dry-run'] ? createWriteStream(mappingOut, { flags: 'w', mode: 0o600 }) : undefined;
      const shown = progress('imported');
      const report = await importAccounts(deps, readImportFile(input, format), {
        ...(client ? { client } : {}),
        strict: values['strict'] === true,
        dryRun: values['dry-run'] === true,
        onProgress: shown,
        ...(mapping ? { onMapping: (entries) => writeTo(mapping, entries.map((entry) => `${JSON.stringify(entry)}\n`).join('')) } : {}),
      });
      shown.done();
      if (mapping) await closeOutput(mapping);
      const { problems, ...counts } = report;
      return {
        json: report,
        text: [
          describeRecord({ ...counts, source: counts.source ?? 'none', mapping: mappingOut ?? 'not written' }),
          ...problems.map((entry) => `line ${entry.line}: ${entry.problem}`),
        ].join('\n'),
      };
    },
  },
  {
    name: 'accounts export',
    usage: 'idp accounts export [--format jsonl] [--with-password-hashes] [--out <file>]',
    summary: 'write every account in the import format (stdout unless --out); exporting password hashes is audited',
    options: { format: { type: 'string' }, 'with-password-hashes': { type: 'boolean' }, out: { type: 'string' } },
    async run(runtime, values) {
      parseOrThrow(z.object({ format: z.literal('jsonl', { message: 'must be jsonl' }).default('jsonl') }), { format: values['format'] });
      const out = values['out'] as string | undefined;
      const stream = out ? createWriteStream(out, { flags: 'w', mode: 0o600 }) : process.stdout;
      const result = await exportAccounts(runtime.db, { withPasswordHashes: values['with-password-hashes'] === true }, (line) =>
        writeTo(stream, line),
      );
      if (out) {
        await closeOutput(stream as WriteStream);
        return { json: { ...result, out }, text: `exported ${result.accounts} account(s) to ${out}` };
      }
      // The accounts went to stdout: nothing else may follow them there.
      return { json: null, text: '', streamed: true };
    },
  },
];

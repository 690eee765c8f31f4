import type { Client } from 'oidc-provider';
import { emailKey } from '../accounts/email-key.js';
import { importRowSchema, rowProblem, type FileRecord, type ImportRow } from '../accounts/import-records.js';
import {
  accountsByEmailKey,
  fillProfileGaps,
  importedBefore,
  insertImportedAccounts,
  insertImportedPasswords,
  recordImports,
  type NewImportedAccount,
} from '../accounts/imports.js';
import { classifyLegacyHash } from '../accounts/legacy-hashes.js';
import { newAccountId } from '../accounts/store.js';
import { recordAuditEvent } from '../audit/log.js';
import type { Queryable } from '../db/index.js';
import { InvalidInput } from '../errors.js';
import { subjectForClient } from '../oidc/internals.js';
import type { WorkflowDeps } from './deps.js';

/**
 * Brings a service's existing accounts into the common ID (idp accounts import), so people
 * keep signing in with the password they have. Rows are checked one by one; each valid row
 * is written whole or not at all, in batches of one transaction each (with --strict, the
 * whole file in one, refused at its first bad row). A row whose address has an account
 * already joins it when both addresses are verified; otherwise it is reported, not merged.
 * Re-running a file changes nothing: (source, legacy_id) names a row once.
 */

export interface ImportOptions {
  /** The service the rows come from (its client), or none: legacy ids are then the file's own. */
  client?: Client;
  strict: boolean;
  dryRun: boolean;
  batchSize?: number;
  /** Each row's legacy id with the sub that service sees for the person (after each batch commits). */
  onMapping?: (entries: { legacy_id: string; sub: string }[]) => Promise<void>;
  onProgress?: (rowsRead: number) => void;
}

export interface ImportReport {
  source: string | null;
  dryRun: boolean;
  rows: number;
  created: number;
  merged: number;
  /** Rows of an earlier run of this file (or of a row whose account was deleted since): left as they are. */
  unchanged: number;
  /** Imported without a password: none given, or a fast or unsalted hash; the person sets one by a reset. */
  withoutPassword: number;
  notMerged: number;
  invalid: number;
  /** Up to MAX_PROBLEMS rows that were not imported, by line. */
  problems: { line: number; problem: string }[];
}

const MAX_PROBLEMS = 1000;

interface ValidRow {
  line: number;
  row: ImportRow;
  key: string;
  /** The hash kept for the first sign-in, or null (none, or not worth keeping). */
  hash: string | null;
}

class DryRunRollback extends Error {}

export async function importAccounts(
  deps: Pick<WorkflowDeps, 'db' | 'provider'>,
  records: AsyncIterable<FileRecord>,
  options: ImportOptions,
): Promise<ImportReport> {
  const source = options.client?.clientId ?? '';
  const batchSize = options.batchSize ?? 2000;
  const report: ImportReport = {
    source: options.client?.clientId ?? null,
    dryRun: options.dryRun,
    rows: 0,
    created: 0,
    merged: 0,
    unchanged: 0,
    withoutPassword: 0,
    notMerged: 0,
    invalid: 0,
    problems: [],
  };
  const problem = (line: number, what: string, kind: 'invalid' | 'notMerged') => {
    if (options.strict) throw new InvalidInput(`line ${line}: ${what}`);
    report[kind] += 1;
    if (report.problems.length < MAX_PROBLEMS) report.problems.push({ line, problem: what });
  };
  const seenKeys = new Map<string, number>();
  const seenLegacyIds = new Map<string, number>();

  function validate(record: FileRecord): ValidRow | undefined {
    if ('unreadable' in record) return void problem(record.line, record.unreadable, 'invalid');
    const parsed = importRowSchema.safeParse(record.fields);
    if (!parsed.success) return void problem(record.line, rowProblem(parsed.error), 'invalid');
    const row = parsed.data;
    const key = emailKey(row.email);
    const sameAddress = seenKeys.get(key);
    if (sameAddress !== undefined) return void problem(record.line, `the same email address as line ${sameAddress}`, 'invalid');
    const sameId = seenLegacyIds.get(row.legacy_id);
    if (sameId !== undefined) return void problem(record.line, `the same legacy_id as line ${sameId}`, 'invalid');
    let hash: string | null = null;
    if (row.password_hash) {
      const verdict = classifyLegacyHash(row.password_hash);
      if (verdict.accepted) hash = row.password_hash;
      else if (!verdict.weak) return void problem(record.line, `password_hash: ${verdict.reason}`, 'invalid');
    }
    seenKeys.set(key, record.line);
    seenLegacyIds.set(row.legacy_id, record.line);
    return { line: record.line, row, key, hash };
  }

  /** Writes one batch in the caller's transaction; returns the mapping of its rows. */
  async function writeBatch(tx: Queryable, batch: ValidRow[]): Promise<{ legacyId: string; accountId: string }[]> {
    const before = await importedBefore(
      tx,
      source,
      batch.map((valid) => valid.row.legacy_id),
    );
    const mapping: { legacyId: string; accountId: string }[] = [];
    const fresh = batch.filter((valid) => {
      if (!before.has(valid.row.legacy_id)) return true;
      report.unchanged += 1;
      const accountId = before.get(valid.row.legacy_id);
      if (accountId) mapping.push({ legacyId: valid.row.legacy_id, accountId });
      return false;
    });
    const existing = await accountsByEmailKey(
      tx,
      fresh.map((valid) => valid.key),
    );
    const created: (NewImportedAccount & { valid: ValidRow })[] = [];
    const merged: { valid: ValidRow; accountId: string }[] = [];
    for (const valid of fresh) {
      const account = existing.get(valid.key);
      if (!account) {
        const { row } = valid;
        created.push({
          valid,
          id: newAccountId(),
          email: row.email,
          emailKey: valid.key,
          emailVerified: row.email_verified,
          name: row.name ?? null,
          givenName: row.given_name ?? null,
          familyName: row.family_name ?? null,
          locale: row.locale ?? null,
        });
      } else if (account.emailVerified && valid.row.email_verified) {
        merged.push({ valid, accountId: account.id });
      } else {
        problem(valid.line, 'an account with this address exists, and one of the two addresses is not verified: not merged', 'notMerged');
      }
    }
    const inserted = await insertImportedAccounts(tx, created);
    const kept = created.filter((account) => {
      if (inserted.has(account.id)) return true;
      problem(account.valid.line, 'the address was registered while the import ran: run the import again to merge it', 'notMerged');
      return false;
    });
    await fillProfileGaps(
      tx,
      merged.map(({ valid, accountId }) => ({
        id: accountId,
        name: valid.row.name ?? null,
        givenName: valid.row.given_name ?? null,
        familyName: valid.row.family_name ?? null,
        locale: valid.row.locale ?? null,
      })),
    );
    const withAccount = [
      ...kept.map((account) => ({ valid: account.valid, accountId: account.id, outcome: 'created' as const })),
      ...merged.map((merge) => ({ ...merge, outcome: 'merged' as const })),
    ];
    await insertImportedPasswords(
      tx,
      source,
      withAccount.flatMap(({ valid, accountId }) => (valid.hash ? [{ accountId, hash: valid.hash }] : [])),
    );
    await recordImports(
      tx,
      source,
      withAccount.map(({ valid, accountId, outcome }) => ({ legacyId: valid.row.legacy_id, accountId, outcome })),
    );
    report.created += kept.length;
    report.merged += merged.length;
    report.withoutPassword += kept.filter((account) => !account.valid.hash).length;
    mapping.push(...withAccount.map(({ valid, accountId }) => ({ legacyId: valid.row.legacy_id, accountId })));
    return mapping;
  }

  async function emitMapping(mapping: { legacyId: string; accountId: string }[]): Promise<void> {
    if (!options.client || !options.onMapping || options.dryRun || mapping.length === 0) return;
    const client = options.client;
    const entries = await Promise.all(
      mapping.map(async ({ legacyId, accountId }) => ({
        legacy_id: legacyId,
        sub: await subjectForClient(deps.provider, client, accountId),
      })),
    );
    await options.onMapping(entries);
  }

  /** One batch in its own transaction (rolled back in a dry run). */
  async function runBatch(batch: ValidRow[]): Promise<void> {
    let mapping: { legacyId: string; accountId: string }[] = [];
    try {
      await deps.db.transaction(async (tx) => {
        mapping = await writeBatch(tx, batch);
        if (options.dryRun) throw new DryRunRollback();
      });
    } catch (error) {
      if (!(error instanceof DryRunRollback)) throw error;
    }
    await emitMapping(mapping);
  }

  async function readAll(onBatch: (batch: ValidRow[]) => Promise<void>): Promise<void> {
    let batch: ValidRow[] = [];
    for await (const record of records) {
      report.rows += 1;
      const valid = validate(record);
      if (valid) batch.push(valid);
      if (batch.length >= batchSize) {
        await onBatch(batch);
        batch = [];
      }
      if (report.rows % 1000 === 0) options.onProgress?.(report.rows);
    }
    if (batch.length) await onBatch(batch);
    options.onProgress?.(report.rows);
  }

  if (options.strict) {
    // All or nothing: one transaction for the whole file, rolled back at its first bad row.
    const mapping: { legacyId: string; accountId: string }[] = [];
    try {
      await deps.db.transaction(async (tx) => {
        await readAll(async (batch) => void mapping.push(...(await writeBatch(tx, batch))));
        if (options.dryRun) throw new DryRunRollback();
      });
    } catch (error) {
      if (!(error instanceof DryRunRollback)) throw error;
    }
    await emitMapping(mapping);
  } else {
    await readAll(runBatch);
  }

  if (!options.dryRun) {
    const { problems: _problems, source: _source, ...counts } = report;
    await recordAuditEvent(deps.db, {
      event: 'accounts.imported',
      outcome: 'success',
      actor: 'admin',
      clientId: source || null,
      details: counts,
    });
  }
  return report;
}

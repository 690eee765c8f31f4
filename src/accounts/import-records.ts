import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { z } from 'zod';
import { emailSchema, optionalText, profileSchema } from './store.js';

/**
 * The file `idp accounts import` reads and `idp accounts export` writes: one account per
 * JSON line (or CSV row, with these column names), with the password hash in the notation
 * its framework wrote (legacy-hashes.ts).
 */
export const importFields = [
  'email',
  'email_verified',
  'name',
  'given_name',
  'family_name',
  'locale',
  'password_hash',
  'legacy_id',
] as const;

const withoutNul = (value: string) => !value.includes('\u0000');
const emptyIsNull = (value: unknown) => (value === '' ? null : value);

const booleanish = z
  .union([z.boolean(), z.enum(['true', 'false', 'TRUE', 'FALSE', '1', '0', 'yes', 'no', ''])], {
    message: 'must be true or false',
  })
  .transform((value) => value === true || ['true', 'TRUE', '1', 'yes'].includes(value as string));

export const importRowSchema = z
  .object({
    email: emailSchema,
    email_verified: booleanish.optional().transform((value) => value ?? false),
    name: optionalText(200),
    given_name: optionalText(100),
    family_name: optionalText(100),
    locale: z.preprocess(emptyIsNull, profileSchema.shape.locale),
    password_hash: z.preprocess(
      emptyIsNull,
      z.string().max(1024, 'password_hash is too long').refine(withoutNul, 'password_hash holds a NUL').nullable().optional(),
    ),
    legacy_id: z
      .string({ message: 'legacy_id is required' })
      .trim()
      .min(1, 'legacy_id is required')
      .max(200, 'legacy_id is too long')
      .refine(withoutNul, 'legacy_id holds a NUL'),
  })
  .strict();

export type ImportRow = z.output<typeof importRowSchema>;

/** One record of the file: its line number, and its fields or why it could not be read. */
export type FileRecord = { line: number; fields: unknown } | { line: number; unreadable: string };

async function* jsonLines(input: Readable): AsyncGenerator<FileRecord> {
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line += 1;
    if (text.trim() === '') continue;
    try {
      const fields: unknown = JSON.parse(text);
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) yield { line, unreadable: 'not a JSON object' };
      else yield { line, fields };
    } catch {
      yield { line, unreadable: 'not valid JSON' };
    }
  }
}

async function* csvRows(input: Readable): AsyncGenerator<FileRecord> {
  // A header row names the columns; a row with another number of cells is unreadable.
  const parser = input.pipe(parseCsv({ columns: true, bom: true, skip_empty_lines: true, relax_column_count: true, info: true }));
  for await (const { record, info } of parser as AsyncIterable<{
    record: Record<string, string>;
    info: { lines: number; invalid_field_length: number };
  }>) {
    if (info.invalid_field_length > 0) yield { line: info.lines, unreadable: 'the row has another number of cells than the header' };
    else yield { line: info.lines, fields: record };
  }
}

/** The records of the file, in order, read as a stream (a large file is never held in memory). */
export function readImportFile(input: Readable, format: 'jsonl' | 'csv'): AsyncGenerator<FileRecord> {
  return format === 'csv' ? csvRows(input) : jsonLines(input);
}

/** The first problem with a row, in one line naming the field. */
export function rowProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid row';
  if (issue.code === 'unrecognized_keys') return `unknown field ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`;
  const field = issue.path.join('.');
  return field ? `${field}: ${issue.message}` : issue.message;
}

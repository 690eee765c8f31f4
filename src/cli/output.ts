import { ConfigError, Conflict, InvalidInput, NotFound, Unavailable } from '../errors.js';

/** The one place errors become exit codes: 2 for bad input (nothing was written), 1 for failures. */
export function exitCodeForError(error: unknown): number {
  if (error instanceof InvalidInput || error instanceof ConfigError || error instanceof UsageError) return 2;
  if (error instanceof NotFound || error instanceof Conflict || error instanceof Unavailable) return 1;
  return 1;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, ' ').trim();
}

export interface CommandResult {
  /** What --json prints. */
  json: unknown;
  /** What a person reads otherwise. */
  text: string;
  /** The command wrote its output to stdout itself (an export): print nothing more. */
  streamed?: boolean;
}

function formatValue(value: unknown): string {
  if (Array.isArray(value)) return value.join(', ') || '-';
  if (value instanceof Date) return value.toISOString();
  if (value === null || value === undefined || value === '') return '-';
  return String(value);
}

/** Renders an object as aligned "key: value" lines. */
export function describeRecord(record: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(record).map((key) => key.length));
  return Object.entries(record)
    .map(([key, value]) => `${key.padEnd(width)}  ${formatValue(value)}`)
    .join('\n');
}

/** Renders rows as a plain table with the given columns. */
export function describeTable(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((row) => columns.map((column) => formatValue(row[column])));
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((line) => line[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((value, i) => value.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

import type { z } from 'zod';
import { InvalidInput } from './errors.js';

/** Validates input at an edge; the first problem becomes a one-line InvalidInput. */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new InvalidInput(
      issue ? `${where}${issue.message}` : 'invalid input',
      issue?.path.map((part) => (typeof part === 'symbol' ? String(part) : part)),
    );
  }
  return parsed.data;
}
